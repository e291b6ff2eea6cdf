//! The gateway's limits from the outside: request-head size, slow and idle clients, connections per
//! shard, per-server concurrency caps and per-key rates — each checked on the wire (status, JSON-RPC
//! code, headers) and, where the gateway audits, in its audit line.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// Everything the connection sends until it closes (or 10 s pass).
fn read_all(s: &mut TcpStream) -> String {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A GET /health head padded with one header to about `size` bytes.
fn padded_head(size: usize) -> Vec<u8> {
    let start = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ";
    let pad = size.saturating_sub(start.len() + 4);
    let mut h = start.as_bytes().to_vec();
    h.extend(std::iter::repeat_n(b'a', pad));
    h.extend_from_slice(b"\r\n\r\n");
    h
}

#[test]
fn a_whole_head_over_the_limit_in_one_read_gets_431() {
    let gw = start("max_header_bytes = 1024\n", 1);
    // 1,500 bytes fit the first read (the connection's buffer starts at 2 KB): the head is complete
    // at once, and still over the limit.
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    s.write_all(&padded_head(1500)).expect("write");
    let answer = read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    // Under the limit, the same request is served.
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    s.write_all(&padded_head(1000)).expect("write");
    let answer = read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}
