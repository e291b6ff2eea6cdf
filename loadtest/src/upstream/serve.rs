//! The native upstream's transports: HTTP/1.1 keep-alive connections, and newline-delimited stdio.

use std::os::fd::AsFd;
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
/// concurrently (a `delay` does not hold up the next line); answers are written as they finish,
/// all those ready at once in one write.
///
/// When stdin and stdout are pipes (as a gateway spawns us) they are driven by the runtime's
/// reactor; tokio's `stdin()`/`stdout()` would hand every read and write to a blocking thread,
/// which halved the throughput (`loadtest stdio-floor`: 18.8k against 35.6k req/s for
/// server-everything on the same machine).
pub async fn stdio(up: Arc<Upstream>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let writer = match pipe_out() {
        Some(out) => tokio::task::spawn_local(write_lines(out, rx)),
        None => tokio::task::spawn_local(write_lines(tokio::io::stdout(), rx)),
    };
    let tx = Rc::new(tx);
    match pipe_in() {
        Some(input) => read_lines(BufReader::new(input), &up, &tx).await,
        None => read_lines(BufReader::new(tokio::io::stdin()), &up, &tx).await,
    }
    drop(tx);
    let _ = writer.await;
}

fn pipe_in() -> Option<tokio::net::unix::pipe::Receiver> {
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    tokio::net::unix::pipe::Receiver::from_owned_fd(fd).ok()
}

fn pipe_out() -> Option<tokio::net::unix::pipe::Sender> {
    let fd = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
    tokio::net::unix::pipe::Sender::from_owned_fd(fd).ok()
}

async fn read_lines<R: AsyncBufReadExt + Unpin>(
    mut input: R,
    up: &Arc<Upstream>,
    tx: &Rc<tokio::sync::mpsc::UnboundedSender<Vec<u8>>>,
) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line).await {
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
}

async fn write_lines<W: AsyncWriteExt + Unpin>(
    mut out: W,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut batch = Vec::with_capacity(16 * 1024);
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        batch.push(b'\n');
        while let Ok(more) = rx.try_recv() {
            batch.extend_from_slice(&more);
            batch.push(b'\n');
        }
        if out.write_all(&batch).await.is_err() || out.flush().await.is_err() {
            return;
        }
    }
}
