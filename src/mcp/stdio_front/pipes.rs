//! The stdio front's two pipe threads: one reads stdin into whole lines, one writes stdout.
//!
//! Pipes are not sockets (see `upstream::stdio`): monoio's epoll driver cannot poll them, so a
//! blocking thread on each side is the portable choice. Both channels are bounded: a client that
//! stops reading our stdout makes request tasks wait on `send_async`, and one that floods stdin
//! waits for the shard to take its lines.

use std::io::{BufRead, Read, Write};

use bytes::Bytes;

/// One line of stdin.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line's text, trimmed (empty lines are skipped).
    Message(Bytes),
    /// A line longer than the limit; its bytes were skipped up to its newline.
    TooLong,
}

/// Lines queued between the reader thread and the shard.
const LINES_QUEUED: usize = 256;
/// Messages queued for stdout before senders wait.
const OUT_QUEUED: usize = 1024;
/// Bytes the writer coalesces into one write.
const BATCH: usize = 256 << 10;

/// Start reading stdin; the channel disconnects at end of input.
pub fn stdin_lines(max: usize) -> Result<flume::Receiver<Line>, String> {
    let (tx, rx) = flume::bounded(LINES_QUEUED);
    std::thread::Builder::new()
        .name("switchyard-stdin".into())
        .spawn(move || read_lines(std::io::stdin().lock(), max, &tx))
        .map_err(|e| format!("cannot start the stdin reader: {e}"))?;
    Ok(rx)
}

/// Start the stdout writer: messages are complete lines (`\n`-terminated); an empty message ends
/// it after everything before it is written. The second channel says it has ended.
pub fn stdout_writer() -> Result<(flume::Sender<Vec<u8>>, flume::Receiver<()>), String> {
    let (tx, rx) = flume::bounded::<Vec<u8>>(OUT_QUEUED);
    let (done_tx, done_rx) = flume::bounded(1);
    std::thread::Builder::new()
        .name("switchyard-stdout".into())
        .spawn(move || {
            write_lines(std::io::stdout().lock(), &rx);
            let _ = done_tx.send(());
        })
        .map_err(|e| format!("cannot start the stdout writer: {e}"))?;
    Ok((tx, done_rx))
}

/// Read `input` line by line until end of input (or until nobody listens).
pub fn read_lines(mut input: impl BufRead, max: usize, tx: &flume::Sender<Line>) {
    let mut line = Vec::with_capacity(8 << 10);
    loop {
        line.clear();
        match (&mut input)
            .take(max as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let msg = if line.len() > max && line.last() != Some(&b'\n') {
            let more = skip_line(&mut input);
            if tx.send(Line::TooLong).is_err() || !more {
                return;
            }
            continue;
        } else {
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            Line::Message(Bytes::copy_from_slice(text))
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

/// Skip to just past the next newline; `false` at end of input.
fn skip_line(input: &mut impl BufRead) -> bool {
    loop {
        let (used, found) = match input.fill_buf() {
            Ok([]) | Err(_) => return false,
            Ok(buf) => match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            },
        };
        input.consume(used);
        if found {
            return true;
        }
    }
}

/// Write messages to `out`, coalescing what is queued, until the end marker or a write error.
pub fn write_lines(mut out: impl Write, rx: &flume::Receiver<Vec<u8>>) {
    let mut batch = Vec::with_capacity(64 << 10);
    while let Ok(first) = rx.recv() {
        let mut end = first.is_empty();
        batch.clear();
        batch.extend_from_slice(&first);
        while !end && batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) if m.is_empty() => end = true,
                Ok(m) => batch.extend_from_slice(&m),
                Err(_) => break,
            }
        }
        if out.write_all(&batch).and_then(|()| out.flush()).is_err() || end {
            return;
        }
    }
}

/// One JSON-RPC message as a stdio line. JSON never needs a raw line break (in strings they are
/// escaped), but an HTTP upstream's pretty-printed bytes may hold some between tokens: as
/// whitespace, they become spaces.
pub fn as_line(msg: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(msg.len() + 1);
    line.extend_from_slice(msg);
    if memchr::memchr2(b'\n', b'\r', msg).is_some() {
        for b in &mut line {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
    }
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let (tx, rx) = flume::unbounded();
        read_lines(std::io::Cursor::new(input.to_vec()), max, &tx);
        drop(tx);
        rx.iter().collect()
    }

    fn msg(s: &str) -> Line {
        Line::Message(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn lines_are_trimmed_and_blank_ones_skipped() {
        let got = lines(b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}", 64);
        assert_eq!(
            got,
            vec![msg("{\"a\":1}"), msg("{\"b\":2}"), msg("{\"c\":3}")]
        );
    }

    #[test]
    fn a_line_over_the_limit_is_skipped_whole() {
        let long = "x".repeat(100);
        let input = format!("{{\"a\":1}}\n{long}\n{{\"b\":2}}\n{long}");
        let got = lines(input.as_bytes(), 16);
        assert_eq!(
            got,
            vec![
                msg("{\"a\":1}"),
                Line::TooLong,
                msg("{\"b\":2}"),
                Line::TooLong
            ]
        );
        // Exactly at the limit is fine, with or without the newline.
        assert_eq!(lines(b"0123456789\n", 10), vec![msg("0123456789")]);
        assert_eq!(lines(b"0123456789", 10), vec![msg("0123456789")]);
        assert_eq!(lines(b"0123456789a\n", 10), vec![Line::TooLong]);
    }

    #[test]
    fn writer_keeps_order_and_stops_at_the_marker() {
        let (tx, rx) = flume::unbounded();
        for m in [&b"1\n"[..], b"2\n", b"", b"3\n"] {
            tx.send(m.to_vec()).unwrap();
        }
        let mut out = Vec::new();
        write_lines(&mut out, &rx);
        assert_eq!(out, b"1\n2\n");
    }

    #[test]
    fn line_breaks_between_tokens_become_spaces() {
        assert_eq!(as_line(b"{\"a\":1}"), b"{\"a\":1}\n");
        assert_eq!(as_line(b"{\n  \"a\": 1\r\n}"), b"{   \"a\": 1  }\n");
    }
}
