//! Legacy SSE upstreams (`transport = "sse"`, the 2024-11-05 HTTP+SSE transport) against a tiny
//! server written here: it answers every POST 202 and sends every message on the GET stream, names
//! its endpoint by a relative URL, pings the gateway, and can be stopped and started again.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// What the connection threads tell the hub, the one thread that owns the sessions.
enum Hub {
    Stream {
        session: u64,
        events: mpsc::Sender<String>,
    },
    Post {
        session: u64,
        body: Value,
        status: mpsc::Sender<u16>,
    },
    Conn(TcpStream),
    Stop,
}

struct TinySse {
    stop: Arc<AtomicBool>,
    hub: mpsc::Sender<Hub>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl TinySse {
    /// Serve on `port`; session ids start at `first_session`. `endpoint` is the endpoint event's
    /// URL before the session id (relative).
    fn start(port: u16, first_session: u64, endpoint: &'static str) -> TinySse {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the tiny SSE server");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let (hub, inbox) = mpsc::channel();
        std::thread::spawn(move || hub_loop(&inbox));
        let sessions = Arc::new(AtomicU64::new(first_session));
        let (stop2, hub2) = (stop.clone(), hub.clone());
        let accept = std::thread::spawn(move || {
            while !stop2.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        if let Ok(c) = s.try_clone() {
                            let _ = hub2.send(Hub::Conn(c));
                        }
                        let (hub3, sessions) = (hub2.clone(), sessions.clone());
                        std::thread::spawn(move || serve(s, &hub3, &sessions, endpoint));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TinySse {
            stop,
            hub,
            accept: Some(accept),
        }
    }

    /// Close the listener and every connection.
    fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = self.hub.send(Hub::Stop);
    }
}

fn chunk(s: &mut TcpStream, data: &str) -> std::io::Result<()> {
    write!(s, "{:x}\r\n{data}\r\n", data.len())?;
    s.flush()
}

/// One connection: a GET /sse stream, or kept-alive POSTs.
fn serve(stream: TcpStream, hub: &mpsc::Sender<Hub>, sessions: &AtomicU64, endpoint: &str) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    while let Ok(Some((line, body))) = read_message(&mut r) {
        let target = line.split(' ').nth(1).unwrap_or("").to_owned();
        if line.starts_with("GET ") && target == "/sse" {
            let session = sessions.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = mpsc::channel::<String>();
            let _ = hub.send(Hub::Stream {
                session,
                events: tx,
            });
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
            if out.write_all(head.as_bytes()).is_err()
                || chunk(&mut out, ": a comment first\n\n").is_err()
                || chunk(
                    &mut out,
                    &format!("event: endpoint\ndata: {endpoint}?sessionId={session}\n\n"),
                )
                .is_err()
            {
                return;
            }
            for ev in rx {
                if chunk(&mut out, &ev).is_err() {
                    return;
                }
            }
            let _ = out.shutdown(Shutdown::Both);
            return;
        }
        let session = target
            .split_once("sessionId=")
            .and_then(|(_, s)| s.parse::<u64>().ok());
        let status = match (line.starts_with("POST "), session) {
            (true, Some(session)) => {
                let (tx, rx) = mpsc::channel();
                let _ = hub.send(Hub::Post {
                    session,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    status: tx,
                });
                rx.recv_timeout(Duration::from_secs(5)).unwrap_or(500)
            }
            _ => 404,
        };
        let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 8\r\n\r\nAccepted");
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn hub_loop(inbox: &mpsc::Receiver<Hub>) {
    let mut sessions: HashMap<u64, mpsc::Sender<String>> = HashMap::new();
    let mut conns = Vec::new();
    let mut pinged = HashSet::new();
    for msg in inbox {
        match msg {
            Hub::Stream { session, events } => {
                sessions.insert(session, events);
            }
            Hub::Conn(c) => conns.push(c),
            Hub::Stop => {
                for c in &conns {
                    let _ = c.shutdown(Shutdown::Both);
                }
                return;
            }
            Hub::Post {
                session,
                body,
                status,
            } => {
                let Some(events) = sessions.get(&session) else {
                    let _ = status.send(404);
                    continue;
                };
                if body["id"] == "srv-ping" && body["result"].is_object() {
                    pinged.insert(session);
                }
                let method = body["method"].as_str().unwrap_or("");
                let name = body["params"]["name"].as_str().unwrap_or("");
                if name == "refuse" {
                    let _ = status.send(500);
                    continue;
                }
                let result = match method {
                    "initialize" => {
                        json!({"protocolVersion":"2024-11-05","capabilities":{"tools":{}},"serverInfo":{"name":"tiny-sse","version":"1"}})
                    }
                    "tools/list" => json!({"tools":[
                        {"name":"echo","inputSchema":{"type":"object","properties":{"message":{"type":"string"}}}},
                        {"name":"pinged","inputSchema":{"type":"object"}},
                        {"name":"refuse","inputSchema":{"type":"object"}}]}),
                    "tools/call" if name == "echo" => {
                        let m = body["params"]["arguments"]["message"]
                            .as_str()
                            .unwrap_or("");
                        json!({"content":[{"type":"text","text":format!("session {session}: {m}")}]})
                    }
                    "tools/call" => {
                        json!({"content":[{"type":"text","text":pinged.contains(&session).to_string()}]})
                    }
                    "notifications/initialized" => {
                        // Our own request to the client: the gateway must answer it.
                        let ping = json!({"jsonrpc":"2.0","id":"srv-ping","method":"ping"});
                        let _ = events.send(format!("event: message\ndata: {ping}\n\n"));
                        Value::Null
                    }
                    _ => Value::Null,
                };
                // The reply goes out on the stream before the POST is answered, as a server may do.
                if !body["id"].is_null() && !result.is_null() {
                    let reply = json!({"jsonrpc":"2.0","id":body["id"],"result":result});
                    let _ = events.send(format!("event: message\ndata: {reply}\n\n"));
                }
                let _ = status.send(202);
            }
        }
    }
}

fn gateway_for(port: u16) -> Gateway {
    start(
        &format!("[[servers]]\nname = \"old\"\nurl = \"http://127.0.0.1:{port}/sse\"\ntransport = \"sse\"\nrequest_timeout_ms = 5000\n"),
        2,
    )
}

fn health_of(gw: &Gateway) -> Value {
    let (_, _, body) = request(gw.addr, "GET", "/health", &[], None).expect("health");
    let h: Value = serde_json::from_slice(&body).expect("health json");
    h["upstreams"][0].clone()
}

fn call(gw: &Gateway, sid: &str, name: &str, args: Value) -> (u16, Value) {
    let (s, _, v) = post(
        gw.addr,
        &[("Mcp-Session-Id", sid)],
        &json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":name,"arguments":args}}),
    );
    (s, v)
}

fn text(v: &Value) -> String {
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn calls_reach_a_legacy_sse_server_through_its_relative_endpoint() {
    let port = free_port();
    let server = TinySse::start(port, 1, "/message");
    let gw = gateway_for(port);
    let up = health_of(&gw);
    assert_eq!(
        (up["state"].as_str(), up["era"].as_str()),
        (Some("ready"), Some("2024-11-05")),
        "{up}"
    );
    let sid = initialize(gw.addr);
    let (s, v) = call(&gw, &sid, "old__echo", json!({"message":"hi"}));
    assert_eq!((s, text(&v).as_str()), (200, "session 1: hi"), "{v}");

    // Many calls at once over the one stream, each answer to its own caller.
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (addr, sid) = (gw.addr, sid.clone());
            std::thread::spawn(move || {
                for i in 0..10 {
                    let msg = format!("w{w}-{i}");
                    let (s, _, v) = post(
                        addr,
                        &[("Mcp-Session-Id", &sid)],
                        &json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{"name":"old__echo","arguments":{"message":msg}}}),
                    );
                    assert_eq!((s, text(&v)), (200, format!("session 1: {msg}")), "{v}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker");
    }

    // The server pinged the gateway after the handshake; the pong went back through the endpoint.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, v) = call(&gw, &sid, "old__pinged", json!({}));
        if text(&v) == "true" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ping was never answered: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A POST the server refuses fails that call at once, not at the timeout.
    let started = Instant::now();
    let (s, v) = call(&gw, &sid, "old__refuse", json!({}));
    assert!(started.elapsed() < Duration::from_secs(3), "no hang");
    assert!(s >= 400 || v["error"].is_object(), "{s} {v}");
    assert!(v.to_string().contains("HTTP 500"), "{v}");
    server.stop();
}

#[test]
fn a_restarted_sse_server_is_reconnected() {
    let port = free_port();
    let server = TinySse::start(port, 1, "/message");
    let gw = gateway_for(port);
    let sid = initialize(gw.addr);
    let (s, v) = call(&gw, &sid, "old__echo", json!({"message":"before"}));
    assert_eq!((s, text(&v).as_str()), (200, "session 1: before"), "{v}");

    server.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while health_of(&gw)["state"] != "down" {
        assert!(
            Instant::now() < deadline,
            "never marked down: {}",
            health_of(&gw)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let (s, v) = call(&gw, &sid, "old__echo", json!({"message":"while down"}));
    assert!(started.elapsed() < Duration::from_secs(3), "no hang");
    assert_eq!((s, v["error"]["code"].as_i64()), (502, Some(-31050)), "{v}");

    // Back, with a path-relative endpoint this time; a new stream is a new session.
    let server = TinySse::start(port, 1001, "message");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, v) = call(&gw, &sid, "old__echo", json!({"message":"after"}));
        if s == 200 && text(&v) == "session 1001: after" {
            break;
        }
        assert!(Instant::now() < deadline, "not reconnected: {s} {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(health_of(&gw)["state"], "ready");
    server.stop();
}
