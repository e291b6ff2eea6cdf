//! The TOML configuration: schema (serde, unknown keys refused), `${VAR}` expansion, and validation
//! whose errors name `file:line`.

mod auth;
mod expand;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use auth::{
    parse_utc, Audit, Auth, Durability, KeyEntry, OAuth, OneOrMany, Role, RoleMap, Roles,
};
pub use expand::expand;

/// A configuration error, already formatted as `file:line: message`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub gateway: Gateway,
    pub naming: Naming,
    pub router: Router,
    pub servers: Vec<Server>,
    /// Keys (those of `auth.keys_file` merged in), per-IP limits.
    pub auth: Auth,
    pub roles: Roles,
    pub audit: Audit,
}

/// Which monoio driver the shards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// io_uring where the kernel allows it, else epoll.
    #[default]
    Auto,
    IoUring,
    Epoll,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gateway {
    pub listen: Spanned<String>,
    /// Shard (thread) count; 0 = one per available core.
    pub shards: usize,
    pub driver: Driver,
    /// Pin each shard's thread to a core.
    pub pin: bool,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    /// Origins allowed besides loopback ones (`http://localhost:*`, `http://127.0.0.1:*`, `http://[::1]:*`).
    pub allowed_origins: Vec<String>,
    pub request_timeout_ms: u64,
    pub session_idle_timeout_ms: u64,
    /// How long a connection may sit idle between requests.
    pub idle_timeout_ms: u64,
    /// Time a client has to send a whole request (head and body) from its first byte; slower
    /// ones get 408 and are closed (slowloris).
    pub request_read_timeout_ms: u64,
    /// Time a client has to take each answer (or stream message) the gateway writes; one that
    /// stops reading is disconnected rather than holding its connection forever.
    pub write_timeout_ms: u64,
    /// Name the gateway gives itself in `serverInfo`.
    pub server_name: String,
    /// Serve HTTPS instead of HTTP.
    pub tls: Option<Tls>,
    /// Open connections each shard serves at once; more are answered 503 (`Retry-After: 1`) and
    /// closed at once (a TLS one is just closed).
    pub max_connections_per_shard: usize,
    /// Client networks allowed to connect (CIDR, e.g. `10.0.0.0/8`); empty = any.
    pub allowed_networks: Vec<String>,
    /// Secret (≥ 32 characters) sealing 2026-07-28 `requestState` handed to clients; gateways that
    /// share it accept each other's states. Unset: a random key per process.
    pub state_key: Option<String>,
    /// Entries per page of the merged tools/prompts/resources/templates lists; 0 = whole lists,
    /// no pagination. Off by default: many clients read only the first page of a list.
    pub page_size: usize,
    /// `ttlMs` a legacy upstream's lists count with when the gateway computes the caching hints of
    /// its merged lists for 2026-07-28 clients (legacy servers give none). 0 = stale at once.
    pub list_ttl_ms: u64,
    /// Resumable SSE answers for legacy (2025-11-25 and older) clients.
    pub resume: Resume,
}

/// `[gateway.resume]`: how legacy answers stream and how long their events are kept for a client
/// that comes back with `Last-Event-ID` (2025-11-25 "Resumability and Redelivery").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resume {
    /// A call of a 2025-11-25 session (that accepts SSE) whose answer is not ready after this long
    /// is answered as an event stream opening with a priming event, so a dropped connection can be
    /// resumed; 0 = every call.
    pub stream_after_ms: u64,
    /// A streamed call still running after this long: the gateway ends the response (the client
    /// holds the priming event's id and `retry`) and the client polls with `GET` + `Last-Event-ID`;
    /// 0 = never (the stream stays open until the answer).
    pub poll_after_ms: u64,
    /// The `retry` (ms) sent with the priming event.
    pub retry_ms: u64,
    /// Events kept per stream for replay (oldest dropped first; the last one always kept).
    pub replay_events: usize,
    /// Bytes kept per stream for replay.
    pub replay_bytes: usize,
    /// How long a finished stream's events stay replayable.
    pub replay_grace_ms: u64,
    /// Bytes all logs of one shard may keep; past it, finished streams are dropped before their
    /// grace is up, oldest first.
    pub replay_shard_bytes: usize,
}

impl Default for Resume {
    fn default() -> Self {
        Resume {
            stream_after_ms: 1_000,
            poll_after_ms: 0,
            retry_ms: 1_000,
            replay_events: 256,
            replay_bytes: 1 << 20,
            replay_grace_ms: 60_000,
            replay_shard_bytes: 64 << 20,
        }
    }
}

/// TLS on the front listener (rustls).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain (relative to the config's folder).
    pub cert: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
    /// Lowest TLS version accepted: "1.3" (default) or "1.2".
    #[serde(default = "tls13")]
    pub min_version: String,
}

fn tls13() -> String {
    "1.3".into()
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            listen: Spanned::new(0..0, "127.0.0.1:3100".into()),
            shards: 0,
            driver: Driver::Auto,
            pin: true,
            max_body_bytes: 4 << 20,
            max_header_bytes: 16 << 10,
            allowed_origins: Vec::new(),
            request_timeout_ms: 60_000,
            session_idle_timeout_ms: 30 * 60_000,
            idle_timeout_ms: 120_000,
            request_read_timeout_ms: 30_000,
            write_timeout_ms: 30_000,
            server_name: "switchyard".into(),
            tls: None,
            max_connections_per_shard: 10_000,
            allowed_networks: Vec::new(),
            state_key: None,
            page_size: 0,
            list_ttl_ms: 0,
            resume: Resume::default(),
        }
    }
}

impl Gateway {
    pub fn listen_addr(&self) -> SocketAddr {
        // Validated in `Config::parse`; the default is a valid address.
        self.listen
            .get_ref()
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 3100)))
    }

    pub fn shard_count(&self) -> usize {
        if self.shards > 0 {
            self.shards
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    }
}

/// Tool routing: every tool listed, or three meta-tools that find tools by intent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Router {
    pub mode: RouterMode,
    /// `semantic`, `keyword` or `hybrid`.
    pub strategy: String,
    /// Put before the meta-tools' names.
    pub prefix: Spanned<String>,
    /// The meta-tools' own names (before the prefix); unset: `find_tools`, `call_tool`,
    /// `list_categories`.
    pub find_tools_name: Option<Spanned<String>>,
    pub call_tool_name: Option<Spanned<String>>,
    pub list_categories_name: Option<Spanned<String>>,
    /// The three public names, prefix included (filled in by validation).
    #[serde(skip)]
    pub names: crate::router::meta::MetaNames,
}

impl Default for Router {
    fn default() -> Self {
        Router {
            mode: RouterMode::Passthrough,
            strategy: "hybrid".into(),
            prefix: Spanned::new(0..0, String::new()),
            find_tools_name: None,
            call_tool_name: None,
            list_categories_name: None,
            names: crate::router::meta::MetaNames::default(),
        }
    }
}

impl Router {
    /// Check the prefix and the meta-tools' names — each a public tool name like the catalog's
    /// (`[A-Za-z0-9_.-]`, at most 64 characters with the prefix), all three distinct — and fill in
    /// `names`.
    fn resolve_names(&mut self, loc: &Locator<'_>) -> Result<(), ConfigError> {
        use crate::catalog::naming::MAX_NAME;
        use crate::router::meta::{MetaNames, CALL_TOOL, FIND_TOOLS, LIST_CATEGORIES};
        let prefix = self.prefix.get_ref();
        if !prefix.bytes().all(public_name_byte) {
            return Err(loc.at(
                self.prefix.span().start,
                format!("router.prefix {prefix:?} may use only [A-Za-z0-9_.-]"),
            ));
        }
        // Each name with where it was set (`None`: the default).
        fn base<'a>(
            set: &'a Option<Spanned<String>>,
            default: &'a str,
        ) -> (&'a str, Option<usize>) {
            set.as_ref()
                .map_or((default, None), |n| (n.get_ref(), Some(n.span().start)))
        }
        let fields = [
            ("find_tools_name", base(&self.find_tools_name, FIND_TOOLS)),
            ("call_tool_name", base(&self.call_tool_name, CALL_TOOL)),
            (
                "list_categories_name",
                base(&self.list_categories_name, LIST_CATEGORIES),
            ),
        ];
        let prefix_at = self.prefix.span().start;
        for (i, (key, (name, at))) in fields.iter().enumerate() {
            if name.is_empty() || !name.bytes().all(public_name_byte) {
                return Err(loc.at(
                    at.unwrap_or(prefix_at),
                    format!("router.{key} {name:?} must be a tool name of [A-Za-z0-9_.-]"),
                ));
            }
            if prefix.len() + name.len() > MAX_NAME {
                return Err(loc.at(
                    at.unwrap_or(prefix_at),
                    format!("router.{key}: \"{prefix}{name}\" (with the prefix) is longer than {MAX_NAME} characters"),
                ));
            }
            if let Some((other, (_, other_at))) = fields[..i].iter().find(|(_, (n, _))| n == name) {
                return Err(loc.at(
                    at.or(*other_at).unwrap_or(prefix_at),
                    format!("router.{key} and router.{other} are both {name:?}: the meta-tools need three names"),
                ));
            }
        }
        let [find, call, categories] = fields.map(|(_, (name, _))| name);
        self.names = MetaNames::new(prefix, find, call, categories);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterMode {
    Passthrough,
    Metatool,
}

/// How public names are made collision-free.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Naming {
    /// Between server and tool/prompt name: `everything__echo`.
    pub separator: String,
    pub policy: NamingPolicy,
}

impl Default for Naming {
    fn default() -> Self {
        Naming {
            separator: "__".into(),
            policy: NamingPolicy::Prefix,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamingPolicy {
    /// Always `<server><sep><name>`.
    Prefix,
    /// The original name where no other server uses it; prefixed only where names collide.
    PrefixOnCollision,
}

/// One upstream server.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub transport: Transport,
    pub enabled: bool,
    pub request_timeout_ms: Option<u64>,
    pub startup_timeout_ms: u64,
    /// Roles that may use this server at all (`None` = every role).
    pub allowed_roles: Option<Vec<String>>,
    /// Globs over this server's own tool names; empty = all.
    pub allowed_tools: Vec<String>,
    pub blocked_tools: Vec<String>,
    /// Which protocol era to speak to it: found by probing (`auto`), or pinned.
    pub era: EraPin,
    /// One connection shared by every client, or one per legacy session (`upstream::isolate`).
    pub isolation: Isolation,
    /// With `isolation = "session"`: at most this many dedicated connections at once.
    pub isolation_limit: usize,
    /// Requests forwarded to this server at once, over all shards; more get 503 (`None` = no cap).
    pub max_concurrent: Option<usize>,
}

/// `[[servers]] isolation`: `shared` (one child or stream for every client) or `session` (a
/// legacy session gets its own, so the server's requests to a client are never ambiguous).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    #[default]
    Shared,
    Session,
}

/// `[[servers]] era`: `auto` probes `server/discover` and falls back to `initialize`; `legacy`
/// always opens a session (for a dual-era server whose tools behave differently by era, say);
/// `modern` refuses a server that does not speak 2026-07-28.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EraPin {
    #[default]
    Auto,
    Legacy,
    Modern,
}

#[derive(Debug, Clone)]
pub enum Transport {
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
        cwd: Option<PathBuf>,
    },
    Http {
        url: String,
        headers: Vec<(String, String)>,
    },
    /// The legacy (2024-11-05) HTTP+SSE transport: `url` is the event stream to GET.
    Sse {
        url: String,
        headers: Vec<(String, String)>,
    },
}

/// `[[servers]] transport` of a url server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum UrlTransport {
    #[default]
    StreamableHttp,
    Sse,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    gateway: Gateway,
    #[serde(default)]
    naming: Naming,
    #[serde(default)]
    router: Router,
    #[serde(default)]
    servers: Vec<Spanned<RawServer>>,
    #[serde(default)]
    auth: Auth,
    #[serde(default)]
    roles: Roles,
    #[serde(default)]
    audit: Audit,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: Spanned<String>,
    command: Option<Spanned<String>>,
    #[serde(default)]
    args: Vec<Spanned<String>>,
    #[serde(default)]
    env: std::collections::BTreeMap<String, Spanned<String>>,
    cwd: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, Spanned<String>>,
    transport: Option<Spanned<UrlTransport>>,
    #[serde(default = "yes")]
    enabled: bool,
    request_timeout_ms: Option<u64>,
    #[serde(default = "default_startup_timeout")]
    startup_timeout_ms: u64,
    allowed_roles: Option<Vec<String>>,
    #[serde(default)]
    allowed_tools: Vec<String>,
    #[serde(default)]
    blocked_tools: Vec<String>,
    #[serde(default)]
    era: EraPin,
    isolation: Option<Spanned<Isolation>>,
    #[serde(default = "default_isolation_limit")]
    isolation_limit: usize,
    max_concurrent: Option<usize>,
}

fn default_isolation_limit() -> usize {
    64
}

fn yes() -> bool {
    true
}

fn default_startup_timeout() -> u64 {
    30_000
}

/// Maps byte offsets of the source to `file:line`.
struct Locator<'a> {
    file: &'a Path,
    src: &'a str,
}

impl Locator<'_> {
    fn at(&self, offset: usize, msg: impl std::fmt::Display) -> ConfigError {
        let line = self.src.as_bytes()[..offset.min(self.src.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ConfigError(format!("{}:{}: {}", self.file.display(), line, msg))
    }

    fn expand(&self, s: &Spanned<String>) -> Result<String, ConfigError> {
        expand(s.get_ref(), self.file).map_err(|e| self.at(s.span().start, e))
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let src = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        Config::parse(path, &src)
    }

    pub fn parse(path: &Path, src: &str) -> Result<Config, ConfigError> {
        let loc = Locator { file: path, src };
        let mut raw: RawConfig = toml::from_str(src).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            loc.at(offset, e.message())
        })?;
        let gw = &raw.gateway;
        if gw.listen.get_ref().parse::<SocketAddr>().is_err() {
            return Err(loc.at(
                gw.listen.span().start,
                format!(
                    "listen: {:?} is not host:port (an IP address and a port)",
                    gw.listen.get_ref()
                ),
            ));
        }
        if gw.request_read_timeout_ms == 0 {
            return Err(loc.at(0, "gateway: request_read_timeout_ms must be > 0"));
        }
        if gw.write_timeout_ms == 0 {
            return Err(loc.at(0, "gateway: write_timeout_ms must be > 0"));
        }
        if gw.max_body_bytes == 0 || gw.max_header_bytes < 1024 {
            return Err(loc.at(
                0,
                "gateway: max_body_bytes must be > 0 and max_header_bytes ≥ 1024",
            ));
        }
        if raw.naming.separator.is_empty() || !raw.naming.separator.bytes().all(public_name_byte) {
            return Err(loc.at(
                0,
                "naming.separator must be non-empty and use only [A-Za-z0-9_.-]",
            ));
        }
        if let Some(t) = &gw.tls {
            if t.min_version != "1.3" && t.min_version != "1.2" {
                return Err(loc.at(
                    0,
                    format!(
                        "gateway.tls.min_version must be \"1.2\" or \"1.3\", not {:?}",
                        t.min_version
                    ),
                ));
            }
        }
        for n in &gw.allowed_networks {
            if crate::policy::cidr::Cidr::parse(n).is_none() {
                return Err(loc.at(
                    0,
                    format!("gateway.allowed_networks: {n:?} is not an address or CIDR network"),
                ));
            }
        }
        if raw
            .router
            .strategy
            .parse::<crate::router::Strategy>()
            .is_err()
        {
            return Err(loc.at(
                0,
                format!(
                    "router.strategy {:?} is not semantic, keyword or hybrid",
                    raw.router.strategy
                ),
            ));
        }
        raw.router.resolve_names(&loc)?;
        let mut servers = Vec::with_capacity(raw.servers.len());
        for s in &raw.servers {
            let at = s.span().start;
            let s = s.get_ref();
            let name = s.name.get_ref();
            if name.is_empty()
                || name.len() > 32
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(loc.at(
                    s.name.span().start,
                    format!("server name {name:?} must be 1-32 characters of [A-Za-z0-9_-]"),
                ));
            }
            if servers.iter().any(|o: &Server| o.name == *name) {
                return Err(loc.at(
                    s.name.span().start,
                    format!("server name {name:?} is used twice"),
                ));
            }
            let transport = match (&s.command, &s.url) {
                (Some(cmd), None) => {
                    if !s.headers.is_empty() || s.transport.is_some() {
                        return Err(loc.at(
                            s.transport.as_ref().map_or(at, |t| t.span().start),
                            format!("server {name:?}: headers and transport apply only to url servers"),
                        ));
                    }
                    let env = s
                        .env
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), loc.expand(v)?)))
                        .collect::<Result<_, ConfigError>>()?;
                    Transport::Stdio {
                        command: loc.expand(cmd)?,
                        args: s
                            .args
                            .iter()
                            .map(|a| loc.expand(a))
                            .collect::<Result<_, _>>()?,
                        env,
                        cwd: s
                            .cwd
                            .as_ref()
                            .map(|c| loc.expand(c).map(PathBuf::from))
                            .transpose()?,
                    }
                }
                (None, Some(url)) => {
                    if !s.args.is_empty() || !s.env.is_empty() || s.cwd.is_some() {
                        return Err(loc.at(
                            at,
                            format!("server {name:?}: args/env/cwd apply only to command servers"),
                        ));
                    }
                    let u = loc.expand(url)?;
                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                        return Err(loc.at(
                            url.span().start,
                            format!("server {name:?}: url must start with http:// or https://"),
                        ));
                    }
                    let headers = s
                        .headers
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), loc.expand(v)?)))
                        .collect::<Result<_, ConfigError>>()?;
                    match s.transport.as_ref().map(|t| *t.get_ref()) {
                        None | Some(UrlTransport::StreamableHttp) => {
                            Transport::Http { url: u, headers }
                        }
                        Some(UrlTransport::Sse) if s.era == EraPin::Modern => {
                            return Err(loc.at(
                                at,
                                format!("server {name:?}: a transport = \"sse\" server speaks only the legacy era, not era = \"modern\""),
                            ))
                        }
                        Some(UrlTransport::Sse) => Transport::Sse { url: u, headers },
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(loc.at(
                        at,
                        format!("server {name:?}: give either command or url, not both"),
                    ))
                }
                (None, None) => {
                    return Err(loc.at(
                        at,
                        format!(
                            "server {name:?}: needs a command (stdio) or a url (Streamable HTTP, or legacy SSE with transport = \"sse\")"
                        ),
                    ))
                }
            };
            if let Some(r) = s
                .allowed_roles
                .iter()
                .flatten()
                .find(|r| !raw.roles.contains_key(*r))
            {
                return Err(loc.at(
                    at,
                    format!("server {name:?}: allowed_roles names an unknown role {r:?}"),
                ));
            }
            let isolation = s
                .isolation
                .as_ref()
                .map_or(Isolation::Shared, |i| *i.get_ref());
            if let (Some(i), Transport::Http { .. }) = (&s.isolation, &transport) {
                if isolation == Isolation::Session {
                    return Err(loc.at(
                        i.span().start,
                        format!("server {name:?}: isolation = \"session\" applies to stdio and sse servers (a Streamable HTTP server's requests to a client come on that client's call)"),
                    ));
                }
            }
            if isolation == Isolation::Session && s.isolation_limit == 0 {
                return Err(loc.at(
                    at,
                    format!("server {name:?}: isolation_limit must be at least 1"),
                ));
            }
            if s.max_concurrent == Some(0) {
                return Err(loc.at(
                    at,
                    format!("server {name:?}: max_concurrent must be at least 1 (leave it out for no cap)"),
                ));
            }
            servers.push(Server {
                name: name.clone(),
                transport,
                enabled: s.enabled,
                request_timeout_ms: s.request_timeout_ms,
                startup_timeout_ms: s.startup_timeout_ms,
                allowed_roles: s.allowed_roles.clone(),
                allowed_tools: s.allowed_tools.clone(),
                blocked_tools: s.blocked_tools.clone(),
                era: s.era,
                isolation,
                isolation_limit: s.isolation_limit,
                max_concurrent: s.max_concurrent,
            });
        }
        let mut auth = raw.auth;
        if let Some(file) = auth.keys_file.clone() {
            let p = loc.expand(&file)?;
            let p = if Path::new(&p).is_relative() {
                path.parent().unwrap_or(Path::new(".")).join(p)
            } else {
                PathBuf::from(p)
            };
            let text = std::fs::read_to_string(&p).map_err(|e| {
                loc.at(file.span().start, format!("keys_file {}: {e}", p.display()))
            })?;
            let kf_loc = Locator {
                file: &p,
                src: &text,
            };
            let kf: auth::KeysFile = toml::from_str(&text)
                .map_err(|e| kf_loc.at(e.span().map_or(0, |s| s.start), e.message()))?;
            for k in &kf.keys {
                check_key(&kf_loc, k, &raw.roles)?;
            }
            auth.keys.extend(kf.keys);
        }
        let mut ids = std::collections::HashSet::new();
        for k in &auth.keys {
            check_key(&loc, k, &raw.roles)?;
            if !ids.insert(k.get_ref().id.clone()) {
                return Err(loc.at(
                    k.span().start,
                    format!("key id {:?} is used twice", k.get_ref().id),
                ));
            }
        }
        if let Some(o) = &mut auth.oauth {
            let at = src.find("[auth.oauth").unwrap_or(0);
            check_oauth(o, path, &raw.roles).map_err(|e| loc.at(at, format!("auth.oauth: {e}")))?;
        }
        if let Some(r) = &auth.stdio_role {
            if !raw.roles.contains_key(r.get_ref()) {
                return Err(loc.at(
                    r.span().start,
                    format!("auth.stdio_role: unknown role {:?}", r.get_ref()),
                ));
            }
        }
        for (name, role) in &raw.roles {
            if role.rate_per_s < 0.0 || !role.rate_per_s.is_finite() {
                return Err(loc.at(0, format!("roles.{name}.rate_per_s must be a number ≥ 0")));
            }
        }
        let mut gateway = raw.gateway;
        if let Some(t) = &mut gateway.tls {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            for f in [&mut t.cert, &mut t.key] {
                let e = expand(f, path).map_err(|e| loc.at(0, format!("gateway.tls: {e}")))?;
                *f = if Path::new(&e).is_relative() {
                    dir.join(e).to_string_lossy().into_owned()
                } else {
                    e
                };
            }
        }
        Ok(Config {
            path: path.to_path_buf(),
            gateway,
            naming: raw.naming,
            router: raw.router,
            servers,
            auth,
            roles: raw.roles,
            audit: {
                let mut a = raw.audit;
                a.path =
                    expand(&a.path, path).map_err(|e| loc.at(0, format!("audit.path: {e}")))?;
                if a.enabled && Path::new(&a.path).is_relative() {
                    let dir = path
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."));
                    a.path = dir.join(&a.path).to_string_lossy().into_owned();
                }
                if a.enabled && (a.max_bytes < 1024 || a.queue == 0) {
                    return Err(loc.at(0, "audit: max_bytes must be ≥ 1024 and queue > 0"));
                }
                a
            },
        })
    }
}

fn check_key(loc: &Locator<'_>, k: &Spanned<KeyEntry>, roles: &Roles) -> Result<(), ConfigError> {
    let at = k.span().start;
    let k = k.get_ref();
    if !(4..=32).contains(&k.id.len()) || !k.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(loc.at(
            at,
            format!("key id {:?} must be 4-32 characters of [A-Za-z0-9]", k.id),
        ));
    }
    if !roles.contains_key(&k.role) {
        return Err(loc.at(
            at,
            format!(
                "key {:?}: unknown role {:?} (define [roles.{}])",
                k.id, k.role, k.role
            ),
        ));
    }
    match argon2::PasswordHash::new(&k.hash) {
        Ok(h) if h.algorithm.as_str() == "argon2id" => {}
        Ok(_) => {
            return Err(loc.at(
                at,
                format!("key {:?}: hash must be an Argon2id PHC string", k.id),
            ))
        }
        Err(e) => return Err(loc.at(at, format!("key {:?}: hash is not a PHC string: {e}", k.id))),
    }
    if let Some(e) = &k.expires {
        if auth::parse_utc(e).is_none() {
            return Err(loc.at(
                at,
                format!(
                    "key {:?}: expires {e:?} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ",
                    k.id
                ),
            ));
        }
    }
    Ok(())
}

/// Expand and check `[auth.oauth]`: one key source, no symmetric or `none` algorithm, an audience,
/// roles that exist; files resolved against the config's folder.
fn check_oauth(o: &mut OAuth, path: &Path, roles: &Roles) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let ex = |s: &str| expand(s, path);
    o.issuer = ex(&o.issuer)?;
    if o.issuer.is_empty() {
        return Err("issuer must not be empty".into());
    }
    for v in [&mut o.resource, &mut o.jwks_url]
        .into_iter()
        .flatten()
        .chain(o.audience.0.iter_mut())
        .chain(o.authorization_servers.iter_mut())
    {
        *v = ex(v)?;
    }
    for f in [&mut o.jwks_file, &mut o.jwks_ca_file]
        .into_iter()
        .flatten()
    {
        let e = ex(f)?;
        *f = if Path::new(&e).is_relative() {
            dir.join(e).to_string_lossy().into_owned()
        } else {
            e
        };
    }
    if let Some(r) = &o.resource {
        let scheme_ok = r.starts_with("https://") || r.starts_with("http://");
        if !scheme_ok || r.contains('#') || r.contains('"') {
            return Err(format!(
                "resource {r:?} must be an http(s) URI without a fragment"
            ));
        }
        if o.audience.0.is_empty() {
            o.audience.0.push(r.clone());
        }
    }
    if o.audience.0.is_empty() {
        return Err("set audience (or resource): tokens must be issued for this gateway".into());
    }
    match (&o.jwks_file, &o.jwks_url) {
        (Some(_), None) => {}
        (None, Some(u)) if u.starts_with("https://") || u.starts_with("http://") => {}
        (None, Some(u)) => return Err(format!("jwks_url {u:?} must start with http(s)://")),
        _ => return Err("give exactly one of jwks_file and jwks_url".into()),
    }
    if o.algorithms.is_empty() {
        return Err("algorithms must name at least one algorithm".into());
    }
    for a in &o.algorithms {
        crate::policy::oauth::parse_algorithm(a)?;
    }
    if o.jwks_refresh_s == 0 {
        return Err("jwks_refresh_s must be > 0".into());
    }
    for (scope, role) in &o.roles.0 {
        if !roles.contains_key(role) {
            return Err(format!(
                "roles: {scope:?} maps to an unknown role {role:?} (define [roles.{role}])"
            ));
        }
    }
    if o.roles.0.is_empty() && o.role_claim.is_none() {
        return Err("map scopes to roles ([auth.oauth.roles]) or name a role_claim".into());
    }
    if o.authorization_servers.is_empty() {
        o.authorization_servers.push(o.issuer.clone());
    }
    if o.scopes_supported.is_empty() && o.role_claim.is_none() {
        o.scopes_supported = o.roles.0.iter().map(|(s, _)| s.clone()).collect();
    }
    Ok(())
}

/// Bytes allowed in a public tool/prompt name.
pub fn public_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("t.toml"), src)
    }

    #[test]
    fn defaults_and_servers() {
        let c = parse(
            r#"
[gateway]
shards = 2
[[servers]]
name = "a"
command = "node"
args = ["x.js", "${CONFIG_DIR}/y"]
[[servers]]
name = "web"
url = "http://127.0.0.1:9/mcp"
enabled = false
"#,
        )
        .unwrap();
        assert_eq!(c.gateway.listen_addr().to_string(), "127.0.0.1:3100");
        assert_eq!(c.gateway.shard_count(), 2);
        assert_eq!(c.servers.len(), 2);
        match &c.servers[0].transport {
            Transport::Stdio { args, .. } => assert_eq!(args[1], "./y"),
            t => panic!("{t:?}"),
        }
        assert!(!c.servers[1].enabled);
    }

    #[test]
    fn max_concurrent_is_optional_and_at_least_one() {
        let c = parse("[[servers]]\nname = \"a\"\ncommand = \"x\"\nmax_concurrent = 4\n[[servers]]\nname = \"b\"\ncommand = \"x\"\n").unwrap();
        assert_eq!(c.servers[0].max_concurrent, Some(4));
        assert_eq!(c.servers[1].max_concurrent, None);
        let e =
            parse("[[servers]]\nname = \"a\"\ncommand = \"x\"\nmax_concurrent = 0\n").unwrap_err();
        assert!(
            e.to_string().contains("max_concurrent must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn isolation_applies_to_stdio_and_sse_servers() {
        let c = parse("[[servers]]\nname = \"a\"\ncommand = \"x\"\nisolation = \"session\"\nisolation_limit = 3\n[[servers]]\nname = \"b\"\nurl = \"http://h/sse\"\ntransport = \"sse\"\nisolation = \"session\"\n[[servers]]\nname = \"c\"\ncommand = \"x\"\n").unwrap();
        assert_eq!(c.servers[0].isolation, Isolation::Session);
        assert_eq!(c.servers[0].isolation_limit, 3);
        assert_eq!(c.servers[1].isolation, Isolation::Session);
        assert_eq!(c.servers[1].isolation_limit, 64);
        assert_eq!(c.servers[2].isolation, Isolation::Shared);
        let e =
            parse("[[servers]]\nname = \"h\"\nurl = \"http://h/mcp\"\n\nisolation = \"session\"\n")
                .unwrap_err()
                .0;
        assert!(
            e.starts_with("t.toml:5:") && e.contains("stdio and sse"),
            "{e}"
        );
        let e = parse("[[servers]]\nname = \"a\"\ncommand = \"x\"\nisolation = \"session\"\nisolation_limit = 0\n")
            .unwrap_err()
            .0;
        assert!(e.contains("at least 1"), "{e}");
        let e = parse("[[servers]]\nname = \"a\"\ncommand = \"x\"\nisolation = \"process\"\n")
            .unwrap_err()
            .0;
        assert!(e.contains("shared") && e.contains("session"), "{e}");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("[gateway]\nlisten = \"127.0.0.1:3100\"\nbogus = 1\n")
            .unwrap_err()
            .0;
        assert!(e.starts_with("t.toml:3:"), "{e}");
        let e = parse("[[servers]]\nname = \"a\"\n\n[[servers]]\nname = \"b\"\ncommand = \"x\"\nurl = \"http://h/\"\n").unwrap_err().0;
        assert!(
            e.starts_with("t.toml:1:") && e.contains("command (stdio) or a url"),
            "{e}"
        );
        let e = parse("[gateway]\nlisten = \"nowhere\"\n").unwrap_err().0;
        assert!(e.starts_with("t.toml:2:"), "{e}");
        let e = parse("[[servers]]\nname = \"bad name\"\ncommand = \"x\"\n")
            .unwrap_err()
            .0;
        assert!(e.starts_with("t.toml:2:"), "{e}");
        let e = parse("[[servers]]\nname = \"a\"\ncommand = \"${SWITCHYARD_TEST_UNSET_VAR}\"\n")
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("t.toml:3:") && e.contains("SWITCHYARD_TEST_UNSET_VAR"),
            "{e}"
        );
        let e = parse("[gateway]\nshards = -1\n").unwrap_err().0;
        assert!(e.starts_with("t.toml:2:"), "{e}");
    }

    #[test]
    fn meta_tool_names_are_checked() {
        let c = parse("[router]\nmode = \"metatool\"\n").unwrap();
        assert_eq!(
            c.router.names.all(),
            ["find_tools", "call_tool", "list_categories"]
        );
        let c = parse("[router]\nprefix = \"gw_\"\ncall_tool_name = \"run\"\n").unwrap();
        assert_eq!(
            c.router.names.all(),
            ["gw_find_tools", "gw_run", "gw_list_categories"]
        );
        let err = |src: &str| parse(src).unwrap_err().0;
        let e = err("[router]\nmode = \"metatool\"\nfind_tools_name = \"find tools\"\n");
        assert!(
            e.starts_with("t.toml:3:") && e.contains("find_tools_name"),
            "{e}"
        );
        let e = err("[router]\nlist_categories_name = \"\"\n");
        assert!(e.starts_with("t.toml:2:"), "{e}");
        let e = err("[router]\n\nprefix = \"gw/\"\n");
        assert!(e.starts_with("t.toml:3:") && e.contains("prefix"), "{e}");
        // Distinct: the line of the one set, whichever of the two it is.
        let e = err("[router]\ncall_tool_name = \"find_tools\"\n");
        assert!(e.starts_with("t.toml:2:") && e.contains("both"), "{e}");
        let e = err("[router]\nmode = \"metatool\"\nfind_tools_name = \"call_tool\"\n");
        assert!(e.starts_with("t.toml:3:") && e.contains("both"), "{e}");
        let e = err(&format!("[router]\nprefix = \"{}\"\n", "p".repeat(60)));
        assert!(
            e.starts_with("t.toml:2:") && e.contains("longer than 64"),
            "{e}"
        );
    }

    #[test]
    fn oauth_section_is_checked() {
        let base = "[roles.r]\n[auth.oauth]\nissuer = \"https://as\"\n";
        let ok = parse(&format!(
            "{base}resource = \"https://gw/mcp\"\njwks_url = \"https://as/jwks\"\n[auth.oauth.roles]\n\"s\" = \"r\"\n"
        ))
        .unwrap();
        let o = ok.auth.oauth.unwrap();
        assert_eq!(
            o.audience.0,
            ["https://gw/mcp"],
            "audience defaults to resource"
        );
        assert_eq!(o.authorization_servers, ["https://as"]);
        assert_eq!(o.scopes_supported, ["s"]);
        for (extra, want) in [
            ("jwks_url = \"https://as/jwks\"\n", "audience"),
            ("audience = \"a\"\n", "exactly one of jwks_file and jwks_url"),
            ("audience = \"a\"\njwks_url = \"https://as/j\"\nalgorithms = [\"HS256\"]\n", "symmetric"),
            ("audience = \"a\"\njwks_url = \"https://as/j\"\nalgorithms = [\"none\"]\n", "is not one of"),
            ("audience = \"a\"\njwks_url = \"ftp://as/j\"\n", "http(s)"),
            ("audience = \"a\"\njwks_url = \"https://as/j\"\n", "map scopes to roles"),
            ("audience = \"a\"\njwks_url = \"https://as/j\"\n[auth.oauth.roles]\n\"s\" = \"nope\"\n", "unknown role"),
        ] {
            let e = parse(&format!("{base}{extra}")).unwrap_err().0;
            assert!(e.starts_with("t.toml:2:") && e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn url_transports() {
        let c = parse(
            "[[servers]]\nname = \"a\"\nurl = \"http://h/sse\"\ntransport = \"sse\"\n\n[[servers]]\nname = \"b\"\nurl = \"http://h/mcp\"\ntransport = \"streamable-http\"\n\n[[servers]]\nname = \"c\"\nurl = \"http://h/mcp\"\n",
        )
        .unwrap();
        assert!(
            matches!(&c.servers[0].transport, Transport::Sse { url, .. } if url == "http://h/sse")
        );
        assert!(matches!(c.servers[1].transport, Transport::Http { .. }));
        assert!(matches!(c.servers[2].transport, Transport::Http { .. }));
        // (the text after `name = "a"`, the error's line, what it says)
        let refused = [
            ("url = \"http://h/\"\ntransport = \"ws\"", 4, "sse"),
            ("command = \"x\"\ntransport = \"sse\"", 4, "url servers"),
            (
                "url = \"http://h/\"\ntransport = \"sse\"\nera = \"modern\"",
                1,
                "legacy",
            ),
        ];
        for (rest, line, says) in refused {
            let e = parse(&format!("[[servers]]\nname = \"a\"\n{rest}\n"))
                .unwrap_err()
                .0;
            assert!(
                e.starts_with(&format!("t.toml:{line}:")) && e.contains(says),
                "{e}"
            );
        }
    }
}
