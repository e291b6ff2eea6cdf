//! The native upstream's transports: HTTP/1.1 keep-alive connections, and newline-delimited stdio.

use std::rc::Rc;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::handler::{Answer, Transport, Upstream};
use crate::wire::{self, Framing, Method};

/// Serves one HTTP connection until the peer closes it (or sends something unreadable).
pub async fn http_connection(stream: TcpStream, up: Arc<Upstream>) {
    let _ = stream.set_nodelay(true);
    let mut stream = stream;
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut scratch = Vec::new();
    let mut out = Vec::with_capacity(16 * 1024);
    loop {
        // Head, then body, reading as needed.
        let mut eof = false;
        let (head, body_at) = loop {
            match wire::parse_request_head(&buf) {
                Ok(Some(head)) => {
                    let rest = &buf[head.head_len..];
                    match wire::complete_body(head.framing, rest, eof, &mut scratch) {
                        Ok(Some(body)) => {
                            let at = match head.framing {
                                Framing::Chunked => None,
                                _ => Some(body.bytes.len()),
                            };
                            let consumed = body.consumed;
                            break (head, (at, consumed));
                        }
                        Ok(None) => {}
                        Err(_) => {
                            refuse(&mut stream, &mut out, 400).await;
                            return;
                        }
                    }
                }
                Ok(None) if eof => return,
                Ok(None) => {}
                Err(wire::WireError::TooLarge) => {
                    refuse(&mut stream, &mut out, 413).await;
                    return;
                }
                Err(_) => {
                    refuse(&mut stream, &mut out, 400).await;
                    return;
                }
            }
            if eof {
                return;
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(buf.len().max(16 * 1024));
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(_) => return,
            }
        };
        let (len, consumed) = body_at;
        let body: &[u8] = match len {
            Some(n) => &buf[head.head_len..head.head_len + n],
            None => &scratch,
        };
        out.clear();
        let close = head.close;
        match head.method {
            Method::Post => {
                let answer = up
                    .handle(
                        body,
                        Transport::Http {
                            session: head.session_id.as_deref(),
                        },
                    )
                    .await;
                write_answer(&mut out, &answer, close);
            }
            Method::Delete => {
                let known = head
                    .session_id
                    .as_deref()
                    .is_some_and(|s| up.knows_session(s));
                let status = if known { 200 } else { 404 };
                wire::write_response(&mut out, status, None, None, b"", close);
            }
            Method::Get | Method::Other => {
                wire::write_response(&mut out, 405, None, None, b"", close);
            }
        }
        if stream.write_all(&out).await.is_err() || close {
            return;
        }
        buf.drain(..head.head_len + consumed);
    }
}

fn write_answer(out: &mut Vec<u8>, a: &Answer, close: bool) {
    let ct = if a.body.is_empty() {
        None
    } else {
        Some("application/json")
    };
    wire::write_response(out, a.status, ct, a.session_id.as_deref(), &a.body, close);
}

async fn refuse(stream: &mut TcpStream, out: &mut Vec<u8>, status: u16) {
    out.clear();
    wire::write_response(out, status, None, None, b"", true);
    let _ = stream.write_all(out).await;
}

/// Serves newline-delimited JSON-RPC on stdin/stdout until stdin closes. Requests run
/// concurrently (a `delay` does not hold up the next line); answers are written as they finish.
pub async fn stdio(up: Arc<Upstream>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::task::spawn_local(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(mut line) = rx.recv().await {
            line.push(b'\n');
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                return;
            }
        }
    });
    let tx = Rc::new(tx);
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let msg = line.trim_ascii().to_vec();
        if msg.is_empty() {
            continue;
        }
        let (up, tx) = (up.clone(), tx.clone());
        tokio::task::spawn_local(async move {
            let answer = up.handle(&msg, Transport::Stdio).await;
            if !answer.body.is_empty() {
                let _ = tx.send(answer.body);
            }
        });
    }
    drop(tx);
    let _ = writer.await;
}
