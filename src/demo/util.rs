//! The `util` demo server: stateless utility tools (echo, arithmetic, hashing, ids, sleeping,
//! deliberate failure), two static resources, two prompts, and completions for prompt arguments;
//! and one demo of a tool list that changes at run time (`toggle_converter` adds or removes
//! `convert_temperature` and sends `notifications/tools/list_changed`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Number, Value};
use sha2::{Digest, Sha256};

use super::proto::{
    complete_from, hex, object_schema, prompt, prompt_result, resource, structured_result,
    text_contents, text_result, tool, tool_error, Args, Effect, Reference, RpcError,
};
use super::{CacheHint, Profile, Server};

static PROFILE: Profile = Profile {
    name: "util",
    title: "switchyard demo: util",
    instructions:
        "Stateless utilities for testing a gateway: echo, add, word_count, sha256, random_id, \
                   sleep_ms and fail (which always returns an error result); toggle_converter adds or \
                   removes the convert_temperature tool, to try a changing tool list.",
    tools: true,
    tools_list_changed: true,
    resources: true,
    prompts: true,
    completions: true,
};

/// Upper bound of `sleep_ms`, so a call cannot wedge the (single-request-at-a-time) server.
const MAX_SLEEP_MS: u64 = 10_000;
const ABOUT_URI: &str = "util://about";
const CONFIG_URI: &str = "util://config";
const LEVELS: &[&str] = &["beginner", "expert"];
const LANGUAGES: &[&str] = &[
    "bash",
    "c",
    "cpp",
    "csharp",
    "go",
    "java",
    "javascript",
    "kotlin",
    "python",
    "ruby",
    "rust",
    "sql",
    "swift",
    "typescript",
];

/// The tool whose presence `toggle_converter` flips.
const CONVERTER: &str = "convert_temperature";
const SCALES: &[&str] = &["celsius", "fahrenheit", "kelvin"];

#[derive(Default)]
pub(crate) struct Util {
    /// Whether `convert_temperature` is listed (and callable).
    converter: bool,
    /// The tool list changed since the last [`Server::take_list_changed`].
    list_changed: bool,
}

/// `value` in `from` as kelvin, then as `to`; `None` below absolute zero.
fn convert_temperature(value: f64, from: &str, to: &str) -> Option<f64> {
    let kelvin = match from {
        "celsius" => value + 273.15,
        "fahrenheit" => (value - 32.0) * 5.0 / 9.0 + 273.15,
        _ => value,
    };
    if !kelvin.is_finite() || kelvin < 0.0 {
        return None;
    }
    Some(match to {
        "celsius" => kelvin - 273.15,
        "fahrenheit" => (kelvin - 273.15) * 9.0 / 5.0 + 32.0,
        _ => kelvin,
    })
}

/// A required string argument that must be one of [`SCALES`].
fn scale<'a>(args: &Args<'a>, key: &str) -> Result<&'a str, RpcError> {
    let s = args.str(key)?;
    if SCALES.contains(&s) {
        Ok(s)
    } else {
        Err(RpcError::invalid_params(format!(
            "Invalid arguments for tool `{CONVERTER}`: `{key}` must be one of celsius, fahrenheit, kelvin"
        )))
    }
}

fn text_schema(key: &str, description: &str) -> Value {
    object_schema(
        json!({ key: { "type": "string", "description": description } }),
        &[key],
    )
}

/// `a + b`: exact for integers that fit `i64`, floating point otherwise.
fn add(a: &Number, b: &Number) -> Option<Number> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        if let Some(sum) = x.checked_add(y) {
            return Some(sum.into());
        }
    }
    Number::from_f64(a.as_f64()? + b.as_f64()?)
}

/// A UUID-v4-shaped id. NOT cryptographically random: it is SHA-256 over the wall clock, a
/// process-wide counter and the pid, which is unique enough for demo ids and needs no extra deps.
fn random_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = Sha256::new();
    hasher.update(nanos.to_le_bytes());
    hasher.update(count.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn config() -> Value {
    json!({
        "server": "switchyard-demo-util",
        "version": env!("CARGO_PKG_VERSION"),
        "limits": { "sleepMsMax": MAX_SLEEP_MS },
        "randomId": { "source": "sha256(time, counter, pid)", "cryptographic": false },
    })
}

impl Server for Util {
    fn profile(&self) -> &'static Profile {
        &PROFILE
    }

    fn tools(&self) -> Vec<Value> {
        let number = |d: &str| json!({ "type": "number", "description": d });
        let mut tools = vec![
            tool(
                "echo",
                "Echo",
                "Return the message unchanged.",
                text_schema("message", "Text to echo back."),
                None,
                Effect::ReadOnly,
            ),
            tool(
                "add",
                "Add",
                "Add two numbers.",
                object_schema(json!({ "a": number("First addend."), "b": number("Second addend.") }), &["a", "b"]),
                Some(object_schema(json!({ "sum": { "type": "number" } }), &["sum"])),
                Effect::ReadOnly,
            ),
            tool(
                "word_count",
                "Word count",
                "Count the words (whitespace-separated), characters and lines of a text.",
                text_schema("text", "Text to measure."),
                Some(object_schema(
                    json!({
                        "words": { "type": "integer" },
                        "characters": { "type": "integer" },
                        "lines": { "type": "integer" },
                    }),
                    &["words", "characters", "lines"],
                )),
                Effect::ReadOnly,
            ),
            tool(
                "sha256",
                "SHA-256",
                "Return the lowercase hex SHA-256 digest of the UTF-8 text.",
                text_schema("text", "Text to hash."),
                None,
                Effect::ReadOnly,
            ),
            tool(
                "random_id",
                "Random id",
                "Return a fresh UUID-v4-shaped id. Not cryptographically random: derived by SHA-256 from \
                 the clock and a counter.",
                object_schema(json!({}), &[]),
                None,
                Effect::ReadOnly,
            ),
            tool(
                "sleep_ms",
                "Sleep",
                "Block for the given number of milliseconds (at most 10000), then return.",
                object_schema(
                    json!({ "ms": {
                        "type": "integer", "minimum": 0, "maximum": MAX_SLEEP_MS, "description": "Milliseconds to sleep."
                    } }),
                    &["ms"],
                ),
                None,
                Effect::ReadOnly,
            ),
            tool(
                "fail",
                "Fail",
                "Always fails: returns a tool result with isError set and the given message.",
                text_schema("message", "The error message to return."),
                None,
                Effect::ReadOnly,
            ),
            tool(
                "toggle_converter",
                "Toggle the converter",
                "Demo of a changing tool list: adds the convert_temperature tool, or removes it when \
                 present, and notifies the client that the tool list changed.",
                object_schema(json!({}), &[]),
                Some(object_schema(json!({ "enabled": { "type": "boolean" } }), &["enabled"])),
                Effect::Additive,
            ),
        ];
        if self.converter {
            let scale = |d: &str| json!({ "type": "string", "enum": SCALES, "description": d });
            tools.push(tool(
                CONVERTER,
                "Convert a temperature",
                "Convert a temperature between degrees Celsius, Fahrenheit and kelvin. Listed only \
                 while toggle_converter has it switched on.",
                object_schema(
                    json!({
                        "value": number("The temperature to convert."),
                        "from": scale("The scale of value."),
                        "to": scale("The scale to convert to."),
                    }),
                    &["value", "from", "to"],
                ),
                Some(object_schema(json!({ "value": { "type": "number" } }), &["value"])),
                Effect::ReadOnly,
            ));
        }
        tools
    }

    fn call_tool(&mut self, name: &str, args: &Map<String, Value>) -> Result<Value, RpcError> {
        let owner = format!("tool `{name}`");
        let args = Args::new(&owner, args);
        match name {
            "echo" => Ok(text_result(args.str("message")?)),
            "add" => {
                let (a, b) = (args.number("a")?, args.number("b")?);
                Ok(match add(a, b) {
                    Some(sum) => structured_result(json!({ "sum": sum })),
                    None => tool_error(format!("add: {a} + {b} is not a finite number")),
                })
            }
            "word_count" => {
                let text = args.str("text")?;
                Ok(structured_result(json!({
                    "words": text.split_whitespace().count(),
                    "characters": text.chars().count(),
                    "lines": text.lines().count(),
                })))
            }
            "sha256" => Ok(text_result(hex(&Sha256::digest(
                args.str("text")?.as_bytes(),
            )))),
            "random_id" => Ok(text_result(random_id())),
            "sleep_ms" => {
                let ms = args.bounded_u64("ms", MAX_SLEEP_MS)?;
                std::thread::sleep(Duration::from_millis(ms));
                Ok(text_result(format!("slept {ms} ms")))
            }
            "fail" => Ok(tool_error(args.str("message")?)),
            "toggle_converter" => {
                self.converter = !self.converter;
                self.list_changed = true;
                tracing::info!(enabled = self.converter, "{CONVERTER} toggled");
                Ok(structured_result(json!({ "enabled": self.converter })))
            }
            CONVERTER if self.converter => {
                let value = args.number("value")?.as_f64().unwrap_or(f64::NAN);
                let (from, to) = (scale(&args, "from")?, scale(&args, "to")?);
                Ok(match convert_temperature(value, from, to) {
                    // Rounded so 100 °C reads 212, not 211.99999999999997.
                    Some(v) => structured_result(json!({ "value": (v * 1e6).round() / 1e6 })),
                    None => tool_error(format!("{value} {from} is below absolute zero")),
                })
            }
            _ => Err(RpcError::invalid_params(format!("Unknown tool: {name}"))),
        }
    }

    fn take_list_changed(&mut self) -> bool {
        std::mem::take(&mut self.list_changed)
    }

    fn cache_hint(&self, method: &str) -> CacheHint {
        // The tool list changes with toggle_converter.
        match method {
            "tools/list" => CacheHint::VOLATILE,
            _ => CacheHint::STATIC,
        }
    }

    fn resources(&self) -> Vec<Value> {
        vec![
            resource(
                ABOUT_URI,
                "about",
                "About this server",
                "What the util demo server is for.",
                "text/plain",
            ),
            resource(
                CONFIG_URI,
                "config",
                "Server configuration",
                "Limits and settings, as JSON.",
                "application/json",
            ),
        ]
    }

    fn resource_templates(&self) -> Vec<Value> {
        Vec::new()
    }

    fn read_resource(&self, uri: &str) -> Result<Vec<Value>, RpcError> {
        match uri {
            ABOUT_URI => Ok(vec![text_contents(
                uri,
                "text/plain",
                format!(
                    "switchyard-demo-util {}: an MCP server of stateless utilities bundled with switchyard so a \
                     gateway can be tried with nothing but cargo. Every tool is deterministic except random_id and \
                     sleep_ms; toggle_converter changes the tool list, to try list_changed.\n",
                    env!("CARGO_PKG_VERSION")
                ),
            )]),
            CONFIG_URI => Ok(vec![text_contents(uri, "application/json", format!("{:#}", config()))]),
            _ => Err(RpcError::resource_not_found(uri)),
        }
    }

    fn prompts(&self) -> Vec<Value> {
        vec![
            prompt(
                "code_review",
                "Code review",
                "Ask the model to review a piece of code.",
                &[
                    ("language", "Programming language of the code.", true),
                    ("code", "The code to review.", true),
                ],
            ),
            prompt(
                "explain",
                "Explain a topic",
                "Ask the model to explain a topic at a chosen level.",
                &[
                    ("topic", "What to explain.", true),
                    ("level", "\"beginner\" (default) or \"expert\".", false),
                ],
            ),
        ]
    }

    fn get_prompt(&self, name: &str, args: &Map<String, Value>) -> Result<Value, RpcError> {
        let owner = format!("prompt `{name}`");
        let args = Args::new(&owner, args);
        match name {
            "code_review" => {
                let (language, code) = (args.str("language")?, args.str("code")?);
                let text = format!(
                    "Please review the following {language} code. Point out bugs, unclear parts and risky \
                     patterns, and suggest concrete improvements.\n\n```{language}\n{code}\n```"
                );
                Ok(prompt_result("Code review", text))
            }
            "explain" => {
                let topic = args.str("topic")?;
                let text = match args.opt_str("level")? {
                    None | Some("beginner") => format!(
                        "Explain {topic} to a beginner: plain language, one everyday analogy, no unexplained jargon."
                    ),
                    Some("expert") => format!(
                        "Explain {topic} to an expert: be precise and dense, cover edge cases and trade-offs."
                    ),
                    Some(other) => {
                        return Err(RpcError::invalid_params(format!(
                            "Invalid arguments for prompt `explain`: `level` must be \"beginner\" or \"expert\", not {other:?}"
                        )))
                    }
                };
                Ok(prompt_result("Explain a topic", text))
            }
            _ => Err(RpcError::invalid_params(format!("Unknown prompt: {name}"))),
        }
    }

    fn complete(
        &self,
        reference: Reference<'_>,
        argument: &str,
        value: &str,
    ) -> Result<Vec<String>, RpcError> {
        match (reference, argument) {
            (Reference::Prompt("explain"), "level") => {
                Ok(complete_from(LEVELS.iter().copied(), value))
            }
            (Reference::Prompt("code_review"), "language") => {
                Ok(complete_from(LANGUAGES.iter().copied(), value))
            }
            (Reference::Prompt("explain" | "code_review"), _) => Ok(Vec::new()),
            (Reference::Prompt(name), _) => {
                Err(RpcError::invalid_params(format!("Unknown prompt: {name}")))
            }
            (Reference::Resource(uri), _) => Err(RpcError::invalid_params(format!(
                "Unknown resource template: {uri}"
            ))),
        }
    }
}
