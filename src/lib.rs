//! switchyard: many upstream MCP servers presented as one, thread-per-core.
//!
//! # Layout
//! - `cli`: the command line (`run`, `check`, `stdio`, `keys`, `route-eval`, `demo-server`).
//! - `config`: the TOML schema, `${VAR}` expansion, validation with file:line errors.
//! - `shard`: one monoio runtime per core (pinned, `SO_REUSEPORT`), the lanes, the control thread.
//! - `http`: HTTP/1.1 server and client codecs, chunked bodies, SSE.
//! - `error`: the one structured error and its mapping to JSON-RPC and HTTP.
//! - `jsonrpc`: the frame (SIMD-parsed, zero-copy spans) and byte-splicing writers.
//! - `mcp`: both protocol eras on one endpoint (or on stdin/stdout), legacy sessions, the method
//!   handlers.
//! - `upstream`: stdio, Streamable HTTP and legacy SSE upstreams, era detection, supervision, the
//!   standing streams held on HTTP upstreams (legacy `GET`, 2026-07-28 `subscriptions/listen`).
//! - `policy`: API keys (hashed), OAuth bearer tokens (JWT), roles and globs compiled to visibility
//!   sets, the GCRA limiter, CORS; a snapshot swapped whole on reload (SIGHUP).
//! - `router`: tool search by intent (n-gram + BM25 indexes, built off-core), `route-eval`.
//! - `audit`: one JSON line per request, queued per shard, written and fsynced by its own thread.
//! - `catalog`: merged tools/prompts/resources under collision-free names, published as a snapshot.
//! - `demo`: small stdio MCP servers built into the binary for the default config.
//!
//! # A tools/call, walked
//! 1. A shard accepts the connection on its own listener (`shard::conn`) and reads one request into
//!    the connection's buffer (`http::server`).
//! 2. `jsonrpc::Frame::parse` reads the body once: kind, id, method, `params.name`, raw spans.
//! 3. `mcp::front` decides the era: `_meta` with a protocol version → 2026-07-28, checked against the
//!    `Mcp-*` headers; otherwise the legacy session named by `Mcp-Session-Id` (404 if unknown).
//! 4. `mcp::dispatch` resolves the public name in the `catalog` snapshot to (upstream, original name).
//! 5. The name is spliced back to the original and the request goes out with a lane-tagged id
//!    (`upstream::call`): over a pooled HTTP connection, or to the writer thread of a stdio child
//!    or a legacy SSE stream.
//! 6. The reply comes back (stdio, SSE: routed by the id's lane bits to this shard's inbox), the
//!    caller's id is spliced in, and the response is written as JSON — result bytes never
//!    re-serialized.

pub mod audit;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod http;
pub mod jsonrpc;
pub mod mcp;
pub mod policy;
pub mod router;
pub mod shard;
pub mod upstream;
