//! Meta-tool mode: `tools/list` shows three meta-tools; `find_tools` searches the routing index for
//! tools the caller's role may use; `call_tool` runs one through the same path as a direct
//! `tools/call` (policy, routing, audit); `list_categories` counts the caller's tools per server.

use bytes::Bytes;
use serde_json::{json, Value};

use super::dispatch::{self, Exchange};
use super::Method;
use crate::catalog::{Catalog, View};
use crate::error::{Error, ErrorKind};
use crate::jsonrpc::Frame;
use crate::router::meta::{DEFAULT_TOP_K, MAX_TOP_K};
use crate::shard::ShardCtx;

/// Which meta-tool a `tools/call` names, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    Find,
    Call,
    Categories,
}

/// By the configured public names (prefix included): an upstream tool never has one of them, the
/// catalog reserves them in meta-tool mode.
pub fn which(ctx: &ShardCtx, name: &str) -> Option<Meta> {
    let names = &ctx.shared.config.router.names;
    if name == names.find {
        Some(Meta::Find)
    } else if name == names.call {
        Some(Meta::Call)
    } else if name == names.categories {
        Some(Meta::Categories)
    } else {
        None
    }
}

fn arguments(ex: &Exchange<'_>) -> Value {
    ex.frame
        .arguments_raw()
        .and_then(|a| serde_json::from_slice(a).ok())
        .unwrap_or_else(|| json!({}))
}

/// A tool result carrying `value` as structured content and as text (with the `resultType` the
/// 2026-07-28 revision requires of every result).
fn tool_result(ex: &Exchange<'_>, value: Value) -> String {
    let mut r = json!({"content": [{"type": "text", "text": value.to_string()}], "structuredContent": value});
    if ex.era == super::ClientEra::Modern {
        r["resultType"] = "complete".into();
    }
    r.to_string()
}

pub async fn call(
    ctx: &ShardCtx,
    ex: &Exchange<'_>,
    catalog: &Catalog,
    view: &View,
    meta: Meta,
) -> Result<Vec<u8>, Error> {
    let id = ex.frame.id_raw().unwrap_or(b"null");
    let names = &ctx.shared.config.router.names;
    match meta {
        Meta::Find => {
            let args = arguments(ex);
            let Some(query) = args
                .get("query")
                .and_then(Value::as_str)
                .filter(|q| !q.trim().is_empty())
            else {
                return Err(Error::downstream(
                    ErrorKind::InvalidParams,
                    format!("{} needs a non-empty query", names.find),
                ));
            };
            let top_k = args
                .get("top_k")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_TOP_K)
                .clamp(1, MAX_TOP_K) as usize;
            let index = ctx.shared.router.load();
            // The index may be a generation behind the catalog: map hits back by public name and
            // check the caller's bits on the catalog's own numbering.
            let visible_index = |i: usize| -> Option<u32> {
                let route = catalog.tools.get(index.name(i)?)?;
                view.tools.get(route.index).then_some(route.index)
            };
            let hits = index.search(query, top_k, |i| visible_index(i).is_some());
            let tools: Vec<Value> = hits
                .iter()
                .filter_map(|h| {
                    let at = visible_index(h.tool)?;
                    let mut entry = catalog.tool_entries.get(at as usize)?.clone();
                    entry["_meta"]["switchyard.dev/score"] =
                        json!((h.score * 1000.0).round() / 1000.0);
                    Some(entry)
                })
                .collect();
            Ok(dispatch::result_body(
                id,
                tool_result(ex, json!({ "tools": tools })).as_bytes(),
            ))
        }
        Meta::Categories => {
            let mut counts = vec![0usize; ctx.shared.upstreams.len()];
            for (i, up) in catalog.tool_upstream.iter().enumerate() {
                if view.tools.get(i as u32) {
                    if let Some(c) = counts.get_mut(*up as usize) {
                        *c += 1;
                    }
                }
            }
            let categories: Vec<Value> = ctx
                .shared
                .upstreams
                .iter()
                .zip(&counts)
                .filter(|(_, c)| **c > 0)
                .map(|(u, c)| json!({"name": u.name, "tools": c, "description": u.last_handshake().and_then(|h| h.instructions.clone()).unwrap_or_default()}))
                .collect();
            Ok(dispatch::result_body(
                id,
                tool_result(ex, json!({ "categories": categories })).as_bytes(),
            ))
        }
        Meta::Call => {
            let args = arguments(ex);
            let Some(name) = args.get("name").and_then(Value::as_str) else {
                return Err(Error::downstream(
                    ErrorKind::InvalidParams,
                    format!("{} needs the tool's name", names.call),
                ));
            };
            if which(ctx, name).is_some() {
                return Err(Error::downstream(
                    ErrorKind::InvalidParams,
                    format!("{} calls real tools, not meta-tools", names.call),
                ));
            }
            // The same request as a direct tools/call: same id, same _meta, the tool's own arguments.
            let mut params = json!({ "name": name, "arguments": args.get("arguments").cloned().unwrap_or_else(|| json!({})) });
            if let Some(m) = ex
                .frame
                .meta_raw()
                .and_then(|m| serde_json::from_slice::<Value>(m).ok())
            {
                params["_meta"] = m;
            }
            let body = format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"tools/call\",\"params\":{params}}}",
                String::from_utf8_lossy(id)
            );
            let frame = Frame::parse(Bytes::from(body))
                .map_err(|e| Error::internal(format!("call_tool: {e}")))?;
            let inner = Exchange {
                era: ex.era,
                frame: &frame,
                method: Method::ToolsCall,
                session: ex.session,
                who: ex.who,
                note: ex.note,
                sink: ex.sink,
                mcp_params: None,
            };
            Box::pin(dispatch::dispatch(ctx, &inner)).await
        }
    }
}
