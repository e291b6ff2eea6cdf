//! The native upstream's MCP: both eras, three tools (echo, compute, delay), answers as JSON.
//!
//! A request whose `params._meta` names a protocol version is 2026-07-28 (stateless, results
//! carry `resultType`); anything else is legacy, where `initialize` opens a session. Sessions are
//! not stored: an id is this process's random prefix plus a counter, so any thread can check one
//! without a lock (an id from another process, or made up, is answered 404).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

const MODERN: &str = "2026-07-28";
const LEGACY: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
const MAX_ECHO: u64 = 16 << 20;
const MAX_DELAY_MS: f64 = 60_000.0;
const MAX_ITERATIONS: u64 = 1_000_000_000;

const TOOLS: &str = r#"[{"name":"echo","description":"Answers with the message, padded with 'x' up to size bytes if size is given.","inputSchema":{"type":"object","properties":{"message":{"type":"string"},"size":{"type":"integer","minimum":0}}}},{"name":"compute","description":"Fixed CPU cost: iterations rounds of xorshift (default 10000), answers the final state.","inputSchema":{"type":"object","properties":{"iterations":{"type":"integer","minimum":0}}}},{"name":"delay","description":"Answers after ms milliseconds (default 10), without blocking other requests.","inputSchema":{"type":"object","properties":{"ms":{"type":"number","minimum":0}}}}]"#;

/// How the request arrived.
#[derive(Debug, Clone, Copy)]
pub enum Transport<'a> {
    /// Streamable HTTP, with the request's `Mcp-Session-Id` if any.
    Http { session: Option<&'a str> },
    /// Newline-delimited stdio: no sessions.
    Stdio,
}

/// An answer: HTTP status, JSON body (empty for a notification), new session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub session_id: Option<String>,
}

/// The server's state shared by every thread (read-only but for the session counter).
pub struct Upstream {
    session_prefix: String,
    next_session: AtomicU64,
    limit: Option<Arc<Semaphore>>,
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Params>,
}

#[derive(Deserialize, Default)]
struct Params {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(rename = "protocolVersion", default)]
    protocol_version: Option<String>,
    #[serde(rename = "_meta", default)]
    meta: Option<Meta>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", default)]
    protocol_version: Option<String>,
}

impl Upstream {
    /// A server; `max_concurrent` bounds tool calls running at once (others wait their turn).
    pub fn new(max_concurrent: Option<usize>) -> Self {
        let mut seed = [0u8; 8];
        let prefix = match std::fs::read("/proc/sys/kernel/random/uuid") {
            Ok(bytes) if bytes.len() >= 8 => {
                seed.copy_from_slice(&bytes[..8]);
                String::from_utf8_lossy(&seed).into_owned()
            }
            _ => format!("{:08x}", std::process::id()),
        };
        Upstream {
            session_prefix: format!("lt-{prefix}-"),
            next_session: AtomicU64::new(1),
            limit: max_concurrent.map(|n| Arc::new(Semaphore::new(n.max(1)))),
        }
    }

    /// Whether `id` is a session this process handed out.
    pub fn knows_session(&self, id: &str) -> bool {
        id.strip_prefix(&self.session_prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Answers one JSON-RPC message.
    pub async fn handle(&self, body: &[u8], transport: Transport<'_>) -> Answer {
        let req: Request<'_> = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(_) if body.trim_ascii_start().starts_with(b"[") => {
                return error(400, None, -32600, "batches are not supported")
            }
            Err(_) => return error(400, None, -32700, "parse error"),
        };
        let Some(method) = req.method.as_deref() else {
            return error(400, req.id, -32600, "not a request");
        };
        let params = req.params.unwrap_or_default();
        let version = params
            .meta
            .as_ref()
            .and_then(|m| m.protocol_version.as_deref());
        let modern = version.is_some();
        if let Some(v) = version {
            if v != MODERN {
                let data = format!(r#"{{"supported":["{MODERN}"]}}"#);
                return error_with(400, req.id, -32022, "unsupported protocol version", &data);
            }
        }
        let Some(id) = req.id else {
            // A notification (notifications/initialized, cancelled, ...): nothing to answer.
            return Answer {
                status: 202,
                body: Vec::new(),
                session_id: None,
            };
        };
        let mut new_session = None;
        if !modern {
            if let Transport::Http { session } = transport {
                match (method, session) {
                    ("initialize" | "server/discover" | "ping", _) => {}
                    (_, None) => return error(400, Some(id), -32600, "Mcp-Session-Id required"),
                    (_, Some(s)) if !self.knows_session(s) => {
                        return error(404, Some(id), -32600, "unknown session")
                    }
                    _ => {}
                }
                if method == "initialize" {
                    let n = self.next_session.fetch_add(1, Ordering::Relaxed);
                    new_session = Some(format!("{}{n}", self.session_prefix));
                }
            }
        }
        let result = match method {
            "server/discover" => Ok(discover()),
            "initialize" if !modern => Ok(initialize(params.protocol_version.as_deref())),
            "ping" => Ok("{}".to_string()),
            "tools/list" => Ok(format!(r#"{{"tools":{TOOLS}}}"#)),
            "prompts/list" => Ok(r#"{"prompts":[]}"#.to_string()),
            "resources/list" => Ok(r#"{"resources":[]}"#.to_string()),
            "resources/templates/list" => Ok(r#"{"resourceTemplates":[]}"#.to_string()),
            "tools/call" => self.call(&params).await,
            _ => {
                let status = if modern { 404 } else { 200 };
                return error(status, Some(id), -32601, "method not found");
            }
        };
        match result {
            Ok(result) => {
                let mut body = Vec::with_capacity(result.len() + 64);
                body.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
                body.extend_from_slice(id.get().as_bytes());
                body.extend_from_slice(br#","result":"#);
                if modern && method != "server/discover" {
                    // {"resultType":"complete", ...the result's own members}
                    body.extend_from_slice(br#"{"resultType":"complete""#);
                    let inner = result.trim_start().strip_prefix('{').unwrap_or("}");
                    if !inner.trim_start().starts_with('}') {
                        body.push(b',');
                    }
                    body.extend_from_slice(inner.as_bytes());
                } else {
                    body.extend_from_slice(result.as_bytes());
                }
                body.push(b'}');
                Answer {
                    status: 200,
                    body,
                    session_id: new_session,
                }
            }
            Err((code, message)) => error(200, Some(id), code, &message),
        }
    }

    async fn call(&self, params: &Params) -> Result<String, (i64, String)> {
        let empty = Map::new();
        let args = params.arguments.as_ref().unwrap_or(&empty);
        let tool = params.name.as_deref().unwrap_or("");
        if !matches!(tool, "echo" | "compute" | "delay") {
            return Err((-32602, format!("unknown tool: {tool}")));
        }
        let _permit = match &self.limit {
            Some(sem) => Some(
                sem.acquire()
                    .await
                    .map_err(|_| (-32603, "server shutting down".to_string()))?,
            ),
            None => None,
        };
        let text = match tool {
            "echo" => {
                let mut text = match args.get("message") {
                    None => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(_) => return Err((-32602, "message must be a string".into())),
                };
                if let Some(size) = args.get("size") {
                    let size = size
                        .as_u64()
                        .filter(|&n| n <= MAX_ECHO)
                        .ok_or((-32602, format!("size must be an integer up to {MAX_ECHO}")))?;
                    let size = size as usize;
                    if text.len() < size {
                        text.extend(std::iter::repeat_n('x', size - text.len()));
                    }
                }
                text
            }
            "compute" => {
                let n = match args.get("iterations") {
                    None => 10_000,
                    Some(v) => v.as_u64().filter(|&n| n <= MAX_ITERATIONS).ok_or((
                        -32602,
                        "iterations must be a non-negative integer".to_string(),
                    ))?,
                };
                format!("{:016x}", compute(n))
            }
            _ => {
                let ms = match args.get("ms") {
                    None => 10.0,
                    Some(v) => v
                        .as_f64()
                        .filter(|ms| (0.0..=MAX_DELAY_MS).contains(ms))
                        .ok_or((
                            -32602,
                            format!("ms must be a number from 0 to {MAX_DELAY_MS}"),
                        ))?,
                };
                tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
                format!("slept {ms} ms")
            }
        };
        let text = Value::String(text).to_string();
        Ok(format!(
            r#"{{"content":[{{"type":"text","text":{text}}}]}}"#
        ))
    }
}

/// `iterations` rounds of xorshift64: a fixed, unoptimizable CPU cost.
pub fn compute(iterations: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..iterations {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = std::hint::black_box(x);
    }
    x
}

fn discover() -> String {
    format!(
        r#"{{"resultType":"complete","supportedVersions":["{MODERN}","2025-11-25"],"capabilities":{{"tools":{{}}}},"_meta":{{"io.modelcontextprotocol/serverInfo":{{"name":"loadtest-upstream","version":"{}"}}}},"ttlMs":0,"cacheScope":"private"}}"#,
        env!("CARGO_PKG_VERSION")
    )
}

fn initialize(requested: Option<&str>) -> String {
    let version = requested
        .filter(|v| LEGACY.contains(v))
        .unwrap_or(LEGACY[0]);
    format!(
        r#"{{"protocolVersion":"{version}","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"loadtest-upstream","version":"{}"}}}}"#,
        env!("CARGO_PKG_VERSION")
    )
}

fn error(status: u16, id: Option<&RawValue>, code: i64, message: &str) -> Answer {
    error_with(status, id, code, message, "")
}

fn error_with(status: u16, id: Option<&RawValue>, code: i64, message: &str, data: &str) -> Answer {
    let id = id.map_or("null", |r| r.get());
    let message = Value::String(message.to_string()).to_string();
    let data = if data.is_empty() {
        String::new()
    } else {
        format!(r#","data":{data}"#)
    };
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}{data}}}}}"#
    );
    Answer {
        status,
        body: body.into_bytes(),
        session_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn json(a: &Answer) -> Value {
        serde_json::from_slice(&a.body).unwrap()
    }

    #[test]
    fn modern_calls_need_no_session_and_say_complete() {
        let up = Upstream::new(None);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"hi","size":4}},{META}}}}}"#
        );
        let a = block_on(up.handle(body.as_bytes(), Transport::Http { session: None }));
        assert_eq!(a.status, 200);
        let v = json(&a);
        assert_eq!(v["id"], 5);
        assert_eq!(v["result"]["resultType"], "complete");
        assert_eq!(v["result"]["content"][0]["text"], "hixx");
        let list =
            format!(r#"{{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{{{META}}}}}"#);
        let v = json(&block_on(
            up.handle(list.as_bytes(), Transport::Http { session: None }),
        ));
        assert_eq!(v["id"], "a");
        assert_eq!(v["result"]["tools"].as_array().map(Vec::len), Some(3));
        let disc =
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{{{META}}}}}"#);
        let v = json(&block_on(
            up.handle(disc.as_bytes(), Transport::Http { session: None }),
        ));
        assert_eq!(v["result"]["supportedVersions"][0], "2026-07-28");
        assert_eq!(v["result"]["cacheScope"], "private");
        let ping = format!(r#"{{"jsonrpc":"2.0","id":2,"method":"ping","params":{{{META}}}}}"#);
        let v = json(&block_on(
            up.handle(ping.as_bytes(), Transport::Http { session: None }),
        ));
        assert_eq!(v["result"], serde_json::json!({"resultType": "complete"}));
    }

    #[test]
    fn legacy_sessions() {
        let up = Upstream::new(None);
        let init = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let a = block_on(up.handle(init, Transport::Http { session: None }));
        assert_eq!(json(&a)["result"]["protocolVersion"], "2025-06-18");
        let sid = a.session_id.clone().unwrap();
        assert!(up.knows_session(&sid));
        assert!(!up.knows_session("lt-other-1"));
        let call = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"compute","arguments":{"iterations":10}}}"#;
        let a = block_on(up.handle(
            call,
            Transport::Http {
                session: Some(&sid),
            },
        ));
        let v = json(&a);
        assert!(v["result"].get("resultType").is_none());
        assert_eq!(
            v["result"]["content"][0]["text"],
            format!("{:016x}", compute(10))
        );
        assert_eq!(
            block_on(up.handle(call, Transport::Http { session: None })).status,
            400
        );
        assert_eq!(
            block_on(up.handle(
                call,
                Transport::Http {
                    session: Some("nope")
                }
            ))
            .status,
            404
        );
        // stdio has no sessions.
        assert_eq!(block_on(up.handle(call, Transport::Stdio)).status, 200);
        let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let a = block_on(up.handle(
            note,
            Transport::Http {
                session: Some(&sid),
            },
        ));
        assert_eq!((a.status, a.body.len()), (202, 0));
    }

    #[test]
    fn errors() {
        let up = Upstream::new(None);
        let s = Transport::Stdio;
        let v = json(&block_on(up.handle(b"{oops", s)));
        assert_eq!(v["error"]["code"], -32700);
        let v = json(&block_on(up.handle(br#"[{"jsonrpc":"2.0"}]"#, s)));
        assert_eq!(v["error"]["code"], -32600);
        let unknown = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}"#;
        assert_eq!(
            json(&block_on(up.handle(unknown, s)))["error"]["code"],
            -32602
        );
        let bad = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delay","arguments":{"ms":-1}}}"#;
        assert_eq!(json(&block_on(up.handle(bad, s)))["error"]["code"], -32602);
        let bad = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"size":1e30}}}"#;
        assert_eq!(json(&block_on(up.handle(bad, s)))["error"]["code"], -32602);
        let modern_unknown =
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"x/y","params":{{{META}}}}}"#);
        let a = block_on(up.handle(modern_unknown.as_bytes(), s));
        assert_eq!(
            (a.status, json(&a)["error"]["code"].as_i64()),
            (404, Some(-32601))
        );
        let old = r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01"}}}"#;
        let a = block_on(up.handle(old.as_bytes(), s));
        assert_eq!(json(&a)["error"]["data"]["supported"][0], "2026-07-28");
    }

    #[test]
    fn delay_waits_and_the_limit_serializes() {
        let up = std::rc::Rc::new(Upstream::new(Some(1)));
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delay","arguments":{"ms":30}}}"#;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let started = std::time::Instant::now();
        local.block_on(&rt, async {
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let up = up.clone();
                    tokio::task::spawn_local(async move { up.handle(call, Transport::Stdio).await })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap().status, 200);
            }
        });
        // One at a time: two 30 ms delays take at least 60 ms.
        assert!(started.elapsed() >= Duration::from_millis(60));
    }
}
