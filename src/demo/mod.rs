//! Bundled demo MCP servers (`switchyard demo-server <name>`): the blocking stdio loop, JSON-RPC
//! framing and validation, and the protocol lifecycle shared by every demo server.
//!
//! Each server reads newline-delimited JSON-RPC from its input and writes one JSON object per line
//! to its output (flushed per message) until EOF; logs go through `tracing` (stderr), never to the
//! protocol channel. Requests are handled one at a time, so blocking tools are fine.
//!
//! Two protocol eras are served on the same stream ("dual-era", spec 2026-07-28 versioning):
//! - **legacy** (2024-11-05 … 2025-11-25): `initialize` negotiates a version; `ping` and
//!   `logging/setLevel` exist; results carry no `resultType`; unknown resources are `-32002`.
//! - **modern** (2026-07-28): stateless. A request whose `params._meta` carries
//!   `io.modelcontextprotocol/protocolVersion: "2026-07-28"` is served on its own, with no prior
//!   handshake. Its result gets `resultType: "complete"`, the server identity in
//!   `_meta["io.modelcontextprotocol/serverInfo"]`, and (for cacheable methods) `ttlMs` and
//!   `cacheScope`. `server/discover` advertises versions, capabilities and identity. Methods the
//!   revision removed (`initialize`, `ping`, `logging/setLevel`) are `-32601` there, and an unknown
//!   version in `_meta` is `-32022` UnsupportedProtocolVersion.

mod notes;
mod proto;
mod util;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_notes;
#[cfg(test)]
mod tests_util;

use std::io::{self, BufRead, Write};

use serde_json::{json, Map, Value};

use proto::{
    Reference, RpcError, LEGACY_VERSIONS, META_CLIENT_INFO, META_PROTOCOL_VERSION,
    META_SERVER_INFO, MODERN_VERSION,
};

/// Why a demo server could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("unknown demo server `{name}`; valid names: {valid}", valid = names().join(", "))]
    UnknownServer { name: String },
    #[error("demo server I/O error: {0}")]
    Io(#[from] io::Error),
}

const NAMES: &[&str] = &["notes", "util"];

/// The names accepted by [`run`].
pub fn names() -> &'static [&'static str] {
    NAMES
}

/// Runs demo server `name` over newline-delimited JSON-RPC until `input` reaches EOF.
///
/// Malformed input never ends the loop (it is answered with a JSON-RPC error); only I/O errors do.
pub fn run(name: &str, input: impl BufRead, output: impl Write) -> Result<(), DemoError> {
    let server: Box<dyn Server> = match name {
        "notes" => Box::new(notes::Notes::new()),
        "util" => Box::<util::Util>::default(),
        _ => {
            return Err(DemoError::UnknownServer {
                name: name.to_owned(),
            })
        }
    };
    tracing::info!(server = name, "demo server started");
    Session {
        server,
        legacy_version: None,
    }
    .serve(input, output)
}

/// Which features a server offers; decides the advertised capabilities.
pub(crate) struct Profile {
    /// The short name (`notes`); the advertised name is `switchyard-demo-<name>`.
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) instructions: &'static str,
    pub(crate) tools: bool,
    /// The tool list can change at run time (announced with `notifications/tools/list_changed`).
    pub(crate) tools_list_changed: bool,
    pub(crate) resources: bool,
    pub(crate) prompts: bool,
    pub(crate) completions: bool,
}

/// Caching hint attached to cacheable 2026-07-28 results (`ttlMs`, `cacheScope`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheHint {
    pub(crate) ttl_ms: u64,
    pub(crate) public: bool,
}

impl CacheHint {
    /// For results fixed for the life of the process (tool lists, static resources).
    pub(crate) const STATIC: CacheHint = CacheHint {
        ttl_ms: 300_000,
        public: true,
    };
    /// For results that change as the server's state changes (the notes themselves).
    pub(crate) const VOLATILE: CacheHint = CacheHint {
        ttl_ms: 0,
        public: false,
    };
}

/// One demo server: its catalogue and the handlers behind it. List outputs must be deterministic.
pub(crate) trait Server {
    fn profile(&self) -> &'static Profile;
    fn tools(&self) -> Vec<Value>;
    /// `Err` for protocol errors (unknown tool, bad arguments); execution failures are `Ok`
    /// results with `isError: true`.
    fn call_tool(&mut self, name: &str, args: &Map<String, Value>) -> Result<Value, RpcError>;
    fn resources(&self) -> Vec<Value>;
    fn resource_templates(&self) -> Vec<Value>;
    /// The `contents` array of `resources/read`, or [`RpcError::resource_not_found`].
    fn read_resource(&self, uri: &str) -> Result<Vec<Value>, RpcError>;
    fn prompts(&self) -> Vec<Value>;
    fn get_prompt(&self, name: &str, args: &Map<String, Value>) -> Result<Value, RpcError>;
    /// Candidate values (unfiltered by the cap) for argument `argument` currently typed as `value`.
    fn complete(
        &self,
        reference: Reference<'_>,
        argument: &str,
        value: &str,
    ) -> Result<Vec<String>, RpcError>;
    /// Whether the tool list changed since the last call (the session then sends
    /// `notifications/tools/list_changed` after the response that changed it).
    fn take_list_changed(&mut self) -> bool {
        false
    }
    /// Caching hint for a cacheable method's result.
    fn cache_hint(&self, _method: &str) -> CacheHint {
        CacheHint::STATIC
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Era {
    Legacy,
    Modern,
}

struct Session {
    server: Box<dyn Server>,
    /// The version negotiated by the last `initialize`, if any (diagnostics only: requests that
    /// arrive before `initialize` are served anyway; being lenient costs nothing here).
    legacy_version: Option<String>,
}

impl Session {
    fn serve(mut self, mut input: impl BufRead, mut output: impl Write) -> Result<(), DemoError> {
        let mut line = Vec::new();
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let message = line.trim_ascii();
            if message.is_empty() {
                continue;
            }
            if let Some(response) = self.handle_message(message) {
                serde_json::to_writer(&mut output, &response).map_err(io::Error::from)?;
                output.write_all(b"\n")?;
                output.flush()?;
            }
            // After the response, so a client re-listing on the notification sees the change.
            if self.server.take_list_changed() {
                output.write_all(
                    b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n",
                )?;
                output.flush()?;
            }
        }
        tracing::info!(
            server = self.server.profile().name,
            "input closed; demo server exiting"
        );
        Ok(())
    }

    /// Handles one line; `None` for notifications (and stray responses), which get no reply.
    fn handle_message(&mut self, raw: &[u8]) -> Option<Value> {
        let message: Value = match serde_json::from_slice(raw) {
            Ok(message) => message,
            Err(e) => return Some(error_response(Value::Null, &RpcError::parse(e))),
        };
        let Value::Object(message) = message else {
            let detail = "expected a JSON-RPC object (batches are not supported)";
            return Some(error_response(
                Value::Null,
                &RpcError::invalid_request(detail),
            ));
        };
        if !message.contains_key("method")
            && (message.contains_key("result") || message.contains_key("error"))
        {
            // A response from the client: these servers never send requests, so nothing awaits it.
            tracing::debug!("ignoring a JSON-RPC response from the client");
            return None;
        }
        let id = match message.get("id") {
            None => None,
            Some(id @ Value::String(_)) => Some(id.clone()),
            Some(id @ Value::Number(n)) if n.is_i64() || n.is_u64() => Some(id.clone()),
            Some(_) => {
                let detail = "id must be a string or an integer";
                return Some(error_response(
                    Value::Null,
                    &RpcError::invalid_request(detail),
                ));
            }
        };
        let reject = |detail: &str| {
            Some(error_response(
                id.clone().unwrap_or(Value::Null),
                &RpcError::invalid_request(detail),
            ))
        };
        if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return reject("jsonrpc must be \"2.0\"");
        }
        let Some(method) = message.get("method").and_then(Value::as_str) else {
            return reject("method must be a string");
        };
        let empty = Map::new();
        let params = match message.get("params") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(params)) => params,
            Some(Value::Array(_)) => {
                let error = RpcError::invalid_params("params must be an object");
                return id.map(|id| error_response(id, &error));
            }
            Some(_) => return reject("params must be an object"),
        };
        match id {
            None => {
                self.handle_notification(method);
                None
            }
            Some(id) => Some(match self.handle_request(method, params) {
                Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
                Err(error) => error_response(id, &error),
            }),
        }
    }

    fn handle_notification(&mut self, method: &str) {
        match method {
            "notifications/initialized" => tracing::debug!("client initialized"),
            "notifications/cancelled" => {
                tracing::debug!("cancellation ignored: requests run to completion one at a time")
            }
            other => tracing::debug!(method = other, "ignoring notification"),
        }
    }

    fn handle_request(
        &mut self,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Value, RpcError> {
        let meta = params.get("_meta").and_then(Value::as_object);
        let era = match meta.and_then(|m| m.get(META_PROTOCOL_VERSION)) {
            // `server/discover` is the modern probe: answer it even without `_meta` (lenient).
            None if method == "server/discover" => Era::Modern,
            None => Era::Legacy,
            Some(Value::String(v)) if v == MODERN_VERSION => Era::Modern,
            // A legacy version in `_meta` (not something legacy clients send): lenient, legacy rules.
            Some(Value::String(v)) if LEGACY_VERSIONS.contains(&v.as_str()) => Era::Legacy,
            Some(Value::String(v)) => return Err(RpcError::unsupported_version(v)),
            Some(_) => {
                return Err(RpcError::invalid_params(format!(
                    "_meta[\"{META_PROTOCOL_VERSION}\"] must be a string"
                )))
            }
        };
        if let Some(client) = meta.and_then(|m| m.get(META_CLIENT_INFO)) {
            tracing::debug!(%client, method, "modern request");
        }
        match era {
            Era::Modern => {
                // `io.modelcontextprotocol/clientCapabilities` is required by the spec but these
                // servers never need a client capability, so a request lacking it is still served.
                let result = match method {
                    "server/discover" => Ok(self.discover()),
                    "initialize" | "ping" | "logging/setLevel" => {
                        Err(RpcError::method_not_found(method))
                    }
                    _ => self.feature(method, params),
                };
                result
                    .map(|r| self.modernize(method, r))
                    .map_err(RpcError::for_modern)
            }
            Era::Legacy => match method {
                "initialize" => Ok(self.initialize(params)),
                "ping" => Ok(json!({})),
                "logging/setLevel" => set_level(params),
                "server/discover" => Ok(self.modernize(method, self.discover())),
                _ => {
                    if self.legacy_version.is_none() {
                        tracing::debug!(method, "request before initialize; serving it anyway");
                    }
                    self.feature(method, params)
                }
            },
        }
    }

    fn server_info(&self) -> Value {
        let profile = self.server.profile();
        json!({
            "name": format!("switchyard-demo-{}", profile.name),
            "title": profile.title,
            "version": env!("CARGO_PKG_VERSION"),
        })
    }

    /// Exactly what the server offers. `logging` is legacy only: the server never emits log
    /// notifications, and its one legacy hook, `logging/setLevel`, does not exist in 2026-07-28.
    fn capabilities(&self, era: Era) -> Value {
        let profile = self.server.profile();
        let mut caps = Map::new();
        if profile.tools {
            caps.insert(
                "tools".into(),
                json!({ "listChanged": profile.tools_list_changed }),
            );
        }
        if profile.resources {
            caps.insert(
                "resources".into(),
                json!({ "subscribe": false, "listChanged": false }),
            );
        }
        if profile.prompts {
            caps.insert("prompts".into(), json!({ "listChanged": false }));
        }
        if profile.completions {
            caps.insert("completions".into(), json!({}));
        }
        if era == Era::Legacy {
            caps.insert("logging".into(), json!({}));
        }
        Value::Object(caps)
    }

    fn initialize(&mut self, params: &Map<String, Value>) -> Value {
        let requested = params.get("protocolVersion").and_then(Value::as_str);
        let version = match requested {
            Some(v) if LEGACY_VERSIONS.contains(&v) => v,
            _ => LEGACY_VERSIONS[0],
        };
        tracing::info!(requested, negotiated = version, client = ?params.get("clientInfo"), "initialize");
        self.legacy_version = Some(version.to_owned());
        json!({
            "protocolVersion": version,
            "capabilities": self.capabilities(Era::Legacy),
            "serverInfo": self.server_info(),
            "instructions": self.server.profile().instructions,
        })
    }

    /// `DiscoverResult` minus the fields [`Session::modernize`] adds (`resultType`, `_meta`,
    /// cache hints).
    fn discover(&self) -> Value {
        json!({
            "supportedVersions": proto::supported_versions(),
            "capabilities": self.capabilities(Era::Modern),
            "instructions": self.server.profile().instructions,
        })
    }

    /// Adds what every 2026-07-28 result carries.
    fn modernize(&self, method: &str, mut result: Value) -> Value {
        let cache = match method {
            "server/discover"
            | "tools/list"
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read" => Some(self.server.cache_hint(method)),
            _ => None,
        };
        let info = self.server_info();
        if let Value::Object(map) = &mut result {
            map.insert("resultType".into(), "complete".into());
            match map.get_mut("_meta") {
                Some(Value::Object(meta)) => {
                    meta.insert(META_SERVER_INFO.into(), info);
                }
                _ => {
                    map.insert("_meta".into(), json!({ META_SERVER_INFO: info }));
                }
            }
            if let Some(hint) = cache {
                map.insert("ttlMs".into(), hint.ttl_ms.into());
                map.insert(
                    "cacheScope".into(),
                    if hint.public { "public" } else { "private" }.into(),
                );
            }
        }
        result
    }

    /// The feature methods common to both eras (tools, resources, prompts, completion).
    fn feature(&mut self, method: &str, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let profile = self.server.profile();
        let enabled = match method {
            "tools/list" | "tools/call" => profile.tools,
            "resources/list" | "resources/templates/list" | "resources/read" => profile.resources,
            "prompts/list" | "prompts/get" => profile.prompts,
            "completion/complete" => profile.completions,
            _ => false,
        };
        if !enabled {
            return Err(RpcError::method_not_found(method));
        }
        match method {
            "tools/list" => no_cursor(params).map(|()| json!({ "tools": self.server.tools() })),
            "resources/list" => {
                no_cursor(params).map(|()| json!({ "resources": self.server.resources() }))
            }
            "resources/templates/list" => no_cursor(params)
                .map(|()| json!({ "resourceTemplates": self.server.resource_templates() })),
            "prompts/list" => {
                no_cursor(params).map(|()| json!({ "prompts": self.server.prompts() }))
            }
            "tools/call" => {
                let name = required_str(params, "name")?;
                let args = arguments(params)?;
                self.server.call_tool(name, args)
            }
            "resources/read" => {
                let uri = required_str(params, "uri")?;
                Ok(json!({ "contents": self.server.read_resource(uri)? }))
            }
            "prompts/get" => {
                let name = required_str(params, "name")?;
                let args = arguments(params)?;
                self.server.get_prompt(name, args)
            }
            _ => self.complete(params),
        }
    }

    fn complete(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let reference = params
            .get("ref")
            .and_then(Value::as_object)
            .ok_or_else(|| bad_param("ref", "an object"))?;
        let reference = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => Reference::Prompt(required_str(reference, "name")?),
            Some("ref/resource") => Reference::Resource(required_str(reference, "uri")?),
            _ => return Err(bad_param("ref.type", "\"ref/prompt\" or \"ref/resource\"")),
        };
        let argument = params
            .get("argument")
            .and_then(Value::as_object)
            .ok_or_else(|| bad_param("argument", "an object"))?;
        let name = required_str(argument, "name")?;
        let value = required_str(argument, "value")?;
        let mut values = self.server.complete(reference, name, value)?;
        let total = values.len();
        values.truncate(proto::MAX_COMPLETION_VALUES);
        Ok(
            json!({ "completion": { "values": values, "total": total, "hasMore": total > values.len() } }),
        )
    }
}

fn error_response(id: Value, error: &RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": error.to_json() })
}

fn bad_param(key: &str, expected: &str) -> RpcError {
    RpcError::invalid_params(format!("Invalid params: `{key}` must be {expected}"))
}

fn required_str<'a>(params: &'a Map<String, Value>, key: &str) -> Result<&'a str, RpcError> {
    params
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad_param(key, "a string"))
}

/// The `arguments` object of `tools/call` / `prompts/get` (absent or null means none).
fn arguments(params: &Map<String, Value>) -> Result<&Map<String, Value>, RpcError> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match params.get("arguments") {
        None | Some(Value::Null) => Ok(EMPTY.get_or_init(Map::new)),
        Some(Value::Object(args)) => Ok(args),
        Some(_) => Err(bad_param("arguments", "an object")),
    }
}

/// Lists fit in one page, so no cursor is ever issued and any cursor presented is invalid.
fn no_cursor(params: &Map<String, Value>) -> Result<(), RpcError> {
    match params.get("cursor") {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(RpcError::invalid_params(
            "Invalid cursor: these lists are never paginated",
        )),
    }
}

/// `logging/setLevel` (legacy): validates the level and accepts it. Nothing is ever sent as
/// `notifications/message`, so there is nothing to filter.
fn set_level(params: &Map<String, Value>) -> Result<Value, RpcError> {
    const LEVELS: &[&str] = &[
        "debug",
        "info",
        "notice",
        "warning",
        "error",
        "critical",
        "alert",
        "emergency",
    ];
    match params.get("level").and_then(Value::as_str) {
        Some(level) if LEVELS.contains(&level) => {
            tracing::debug!(level, "logging/setLevel");
            Ok(json!({}))
        }
        _ => Err(bad_param(
            "level",
            "a log level (debug, info, notice, warning, error, critical, alert, emergency)",
        )),
    }
}
