//! Shards: one monoio runtime per core, each on its own pinned thread with its own `SO_REUSEPORT`
//! listener; the state they share (read-mostly snapshots and the channels between lanes); and the
//! graceful drain on stop.
//!
//! The driver is chosen here, on purpose: io_uring where the kernel allows it, else epoll (monoio's
//! "legacy" driver), and each shard logs which one it got. `gateway.driver` can force either, so the
//! two can be measured side by side.

pub mod conn;
pub mod control;
pub mod lane;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::catalog::Catalog;
use crate::config::{Config, Driver};
use crate::error::Error;
use crate::jsonrpc::Frame;
use crate::mcp::session::{SessionMsg, Sessions};
use crate::upstream::Upstream;
use lane::Lane;

/// Messages into a lane (a shard's or the control thread's event loop).
pub enum LaneMsg {
    /// A stdio or legacy SSE upstream's reply to a request this lane sent.
    Reply {
        upstream: u16,
        frame: Frame,
    },
    /// A message a stdio or legacy SSE upstream sent while serving request `id` of this lane.
    Interim {
        upstream: u16,
        id: u64,
        frame: Frame,
    },
    /// Lists changed: per role, which kinds (`mcp::listen` bits).
    ListsChanged(Arc<[u8]>),
    /// An upstream said one of its resources was updated.
    ResourceUpdated {
        upstream: u16,
        uri: Box<str>,
        /// The session whose own connection sent it (`isolate`); 0: a shared connection's.
        session: u64,
    },
    /// A legacy client cancelled one of its requests (told to every shard).
    Cancel {
        session: u64,
        id: bytes::Bytes,
    },
    /// A 2026-07-28 client's retry for a call this lane holds (it reached another shard).
    Resume(crate::mcp::hold::Resume),
    /// Request `id` of this lane could not be delivered (a legacy SSE upstream refused its POST).
    Failed {
        upstream: u16,
        id: u64,
        error: Error,
    },
    /// A client's answer to a server-to-client request this lane relayed.
    ClientAnswer {
        session: u64,
        frame: Frame,
    },
    /// An upstream died: fail what this lane has in flight there.
    UpstreamGone {
        upstream: u16,
        error: Error,
    },
    Session(SessionMsg),
    /// Another shard resumes a stream whose log this lane holds (`Last-Event-ID`).
    Replay(crate::mcp::resume::ReplayAsk),
    /// A legacy HTTP upstream's message for a client session, from its GET stream.
    Unlinked(Arc<crate::upstream::stream::Unlinked>),
    Stop,
}

/// A lane's receiving end.
pub type Inbox = flume::Receiver<LaneMsg>;

/// Messages to the control thread.
pub enum ControlMsg {
    /// A stdio child exited, or a legacy SSE upstream's event stream ended.
    Exited {
        upstream: u16,
        generation: u64,
    },
    /// An upstream said one of its lists changed.
    ListChanged {
        upstream: u16,
        generation: u64,
        /// Which lists it named (`mcp::listen` bits).
        kinds: u8,
    },
    /// The policy's role rules changed (a reload): rebuild the catalog's visibility sets.
    Republish,
    /// A legacy session needs its own connection to server `server` (`isolation = "session"`).
    Isolate {
        server: u16,
        session: u64,
        reply: flume::Sender<Result<Arc<Upstream>, crate::error::Error>>,
    },
    /// A legacy session ended (DELETE or expiry): its dedicated connections go.
    Release {
        session: u64,
    },
    /// A client holds resource `uri` (the server's own URI) of shared legacy upstream `upstream`
    /// (`upstream::subs`).
    Subscribe {
        upstream: u16,
        uri: Box<str>,
        reply: crate::upstream::subs::Reply,
    },
    /// A client lets go of it.
    Unsubscribe {
        upstream: u16,
        uri: Box<str>,
    },
    /// A Streamable HTTP server forgot the gateway's session (a new one was opened): subscribe
    /// again to what clients hold there.
    Resubscribe {
        upstream: u16,
    },
    Stop,
}

/// State every thread can read: built once at start, snapshots swapped whole.
pub struct Shared {
    pub config: Arc<Config>,
    pub catalog: ArcSwap<Catalog>,
    pub upstreams: Vec<Arc<Upstream>>,
    /// Sessions' dedicated upstreams (`upstream::isolate`), published by the control thread.
    pub isolated: ArcSwap<crate::upstream::isolate::Registry>,
    /// Lane inboxes; index = lane (0 = control, 1..=N = shards).
    pub lanes: Vec<flume::Sender<LaneMsg>>,
    pub control: flume::Sender<ControlMsg>,
    stopping: AtomicBool,
    pub started: Instant,
    pub shard_count: usize,
    /// Shards that finished starting (listener bound).
    pub shards_up: AtomicUsize,
    /// Keys, tokens, roles, limits: a snapshot swapped whole on reload.
    pub policy: crate::policy::PolicyHandle,
    /// The audit log, when on.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// TLS for the front listener, when configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Seals `requestState` handed to 2026-07-28 clients.
    pub state_key: crate::mcp::state::StateKey,
    /// The routing index (meta-tool mode), swapped in whole by the builder thread.
    pub router: crate::router::RouterHandle,
}

impl Shared {
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub fn upstream(&self, index: u16) -> Option<&Arc<Upstream>> {
        self.upstreams.get(index as usize)
    }

    /// Ask the control thread and await its answer (`make` wraps the reply's sender in the
    /// message).
    pub async fn ask_control<T>(
        &self,
        make: impl FnOnce(flume::Sender<Result<T, crate::error::Error>>) -> ControlMsg,
    ) -> Result<T, crate::error::Error> {
        let (reply, answer) = flume::bounded(1);
        let stopping = || {
            crate::error::Error::new(
                crate::error::ErrorKind::ShuttingDown,
                crate::error::Source::Internal,
                "the gateway is stopping",
            )
        };
        self.control.send(make(reply)).map_err(|_| stopping())?;
        answer.recv_async().await.map_err(|_| stopping())?
    }

    /// A configured upstream or a session's dedicated one (for what names an upstream by the index
    /// its messages carried).
    pub fn any_upstream(&self, index: u16) -> Option<Arc<Upstream>> {
        match self.upstreams.get(index as usize) {
            Some(up) => Some(up.clone()),
            None => self.isolated.load().by_index(index).cloned(),
        }
    }

    /// See `Gateway::reload_auth`.
    pub fn reload_auth(&self, config: &Config) -> Result<crate::policy::Reloaded, String> {
        let r = self.policy.reload(config)?;
        if r.rules_changed {
            let _ = self.control.send(ControlMsg::Republish);
        }
        Ok(r)
    }
}

/// A shard's own context: its lane, its sessions, its counters. `!Send`, never leaves its thread.
pub struct ShardCtx {
    /// Itself, for the tasks it spawns that outlive a request (a held call's upstream POST).
    pub(crate) me: std::rc::Weak<ShardCtx>,
    pub shared: Arc<Shared>,
    pub lane: Lane,
    pub sessions: Sessions,
    /// Requests being served right now (the drain waits for zero).
    pub active: std::cell::Cell<usize>,
    /// Keys and tokens this shard has already verified.
    pub auth: crate::policy::AuthCache,
    /// Open connections on this shard.
    pub conns: std::cell::Cell<usize>,
    /// Connections over the limit being answered 503 (each held up to a second; bounded too).
    pub refusing: std::cell::Cell<usize>,
    /// Server-to-client requests this shard relayed, awaiting clients' answers.
    pub answers: crate::mcp::relay::Answers,
    /// Standing notification streams held by this shard's connections.
    pub listeners: crate::mcp::listen::Listeners,
    /// Upstream calls held for a 2026-07-28 client's input.
    pub held: crate::mcp::hold::Held,
    /// Legacy sessions' calls in flight, for their cancellation.
    pub calls: crate::mcp::relay::Calls,
    /// Logs of this shard's legacy SSE streams, for `Last-Event-ID` resumption.
    pub streams: crate::mcp::resume::Streams,
}

impl ShardCtx {
    pub fn index(&self) -> u16 {
        self.lane.index
    }

    /// A counted handle on this context (`None` only while it is being dropped).
    pub fn rc(&self) -> Option<Rc<ShardCtx>> {
        self.me.upgrade()
    }
}

/// Everything `run` needs to start; `Gateway::stop` ends it.
pub struct Gateway {
    shared: Arc<Shared>,
    shards: Vec<std::thread::JoinHandle<()>>,
    control: Option<std::thread::JoinHandle<()>>,
    audit_writer: Option<std::thread::JoinHandle<()>>,
}

impl Gateway {
    /// Start the control thread and the shards. Returns once every shard has bound its listener.
    pub fn start(config: Config) -> Result<Gateway, String> {
        let addr = config.gateway.listen_addr();
        // Bind once here first so a bad address (in use, not ours) fails start-up with a clear error.
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let (mut gateway, mut lane_rx) = Gateway::launch(config)?;
        let shared = gateway.shared.clone();
        let config = shared.config.clone();
        let shard_count = shared.shard_count;
        let cores = core_ids();
        let (ready_tx, ready_rx) = flume::unbounded::<Result<(), String>>();
        for i in 1..=shard_count {
            let inbox = lane_rx[i].take().ok_or("shard inbox")?;
            let s = shared.clone();
            let ready = ready_tx.clone();
            let core = if config.gateway.pin && !cores.is_empty() {
                Some(cores[(i - 1) % cores.len()])
            } else {
                None
            };
            let driver = config.gateway.driver;
            let h = std::thread::Builder::new()
                .name(format!("switchyard-shard-{i}"))
                .spawn(move || shard_main(i as u16, s, inbox, addr, core, driver, ready))
                .map_err(|e| format!("cannot start shard {i}: {e}"))?;
            gateway.shards.push(h);
        }
        drop(ready_tx);
        for _ in 0..shard_count {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    gateway.stop();
                    return Err(e);
                }
                Err(_) => return Err("a shard died while starting".into()),
            }
        }
        let scheme = if shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(%addr, shards = shard_count, "switchyard listening on {scheme}://{addr}/mcp");
        Ok(gateway)
    }

    /// Start the control thread (and with it the upstreams) for one stdio client, with no
    /// listener: the caller runs the only shard (lane 1) on its own thread, with the inbox
    /// returned, and calls `stop` once it is done.
    pub fn start_stdio(mut config: Config) -> Result<(Gateway, Inbox), String> {
        config.gateway.shards = 1;
        // No listener: the loopback placeholder keeps the policy's exposure check (keys required
        // off loopback) from refusing a config written for a public HTTP listener.
        config.gateway.listen = toml::Spanned::new(0..0, "127.0.0.1:0".into());
        // One client: every server's requests are its own, nothing to isolate.
        for s in &mut config.servers {
            s.isolation = crate::config::Isolation::Shared;
        }
        let (gateway, mut lane_rx) = Gateway::launch(config)?;
        let inbox = lane_rx[1].take().ok_or("shard inbox")?;
        gateway.shared.shards_up.fetch_add(1, Ordering::AcqRel);
        Ok((gateway, inbox))
    }

    /// The shared state and the control thread; the shards' inboxes are the caller's to run.
    fn launch(config: Config) -> Result<(Gateway, Vec<Option<Inbox>>), String> {
        let policy =
            crate::policy::PolicyHandle::new(crate::policy::Policy::compile(&config)?, &config);
        let state_key = crate::mcp::state::StateKey::new(config.gateway.state_key.as_deref())?;
        let tls = config
            .gateway
            .tls
            .as_ref()
            .map(crate::http::tls::server_config)
            .transpose()?;
        let (audit, audit_writer) =
            match crate::audit::AuditLog::start(&config.audit, config.gateway.shard_count())? {
                Some((log, handle)) => (Some(log), Some(handle)),
                None => (None, None),
            };
        let config = Arc::new(config);
        let shard_count = config.gateway.shard_count();
        let mut upstreams = Vec::new();
        for (i, s) in config.servers.iter().enumerate() {
            upstreams.push(Arc::new(
                Upstream::new(i as u16, s, config.gateway.request_timeout_ms)
                    .map_err(|e| format!("server {:?}: {e}", s.name))?,
            ));
        }
        let mut lane_tx = Vec::new();
        let mut lane_rx = Vec::new();
        for _ in 0..=shard_count {
            let (tx, rx) = flume::unbounded();
            lane_tx.push(tx);
            lane_rx.push(Some(rx));
        }
        let (control_tx, control_rx) = flume::unbounded();
        let shared = Arc::new(Shared {
            config: config.clone(),
            catalog: ArcSwap::from_pointee(Catalog::default()),
            upstreams,
            isolated: Default::default(),
            lanes: lane_tx,
            control: control_tx,
            stopping: AtomicBool::new(false),
            started: Instant::now(),
            shard_count,
            shards_up: AtomicUsize::new(0),
            policy,
            audit,
            tls,
            state_key,
            router: crate::router::RouterHandle::empty(crate::router::IndexConfig {
                strategy: config
                    .router
                    .strategy
                    .parse()
                    .unwrap_or(crate::router::Strategy::Hybrid),
                ..Default::default()
            }),
        });
        let control_inbox = lane_rx[0].take().ok_or("lane 0 inbox")?;
        let s = shared.clone();
        let control = std::thread::Builder::new()
            .name("switchyard-control".into())
            .spawn(move || control::run(s, control_inbox, control_rx))
            .map_err(|e| format!("cannot start the control thread: {e}"))?;
        let gateway = Gateway {
            shared,
            shards: Vec::new(),
            control: Some(control),
            audit_writer,
        };
        Ok((gateway, lane_rx))
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Reload the `[auth]` and `[roles]` sections from `config` (SIGHUP): the new policy is
    /// swapped in whole; requests already admitted finish under the old one. Other sections are
    /// read at start only.
    pub fn reload_auth(&self, config: &Config) -> Result<crate::policy::Reloaded, String> {
        self.shared.reload_auth(config)
    }

    /// Stop: shards stop accepting and drain in-flight requests, then upstreams are stopped.
    pub fn stop(mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        for lane in self.shared.lanes.iter().skip(1) {
            let _ = lane.send(LaneMsg::Stop);
        }
        for h in self.shards.drain(..) {
            let _ = h.join();
        }
        // Every answered request's line reaches the file before the process exits.
        if let Some(a) = &self.shared.audit {
            a.stop();
        }
        if let Some(w) = self.audit_writer.take() {
            let _ = w.join();
        }
        let _ = self.shared.control.send(ControlMsg::Stop);
        if let Some(c) = self.control.take() {
            let _ = c.join();
        }
        tracing::info!("switchyard stopped");
    }
}

fn core_ids() -> Vec<usize> {
    // The cores this process may run on, in order.
    // Safety: zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it for this thread.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }
            == 0;
    if !ok {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

type Rt = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

/// Build an event loop with the chosen driver.
pub fn build_runtime(driver: Driver) -> std::io::Result<Rt> {
    match driver {
        Driver::Auto if monoio::utils::detect_uring() => {
            uring_runtime().or_else(|_| epoll_runtime())
        }
        Driver::Auto | Driver::Epoll => epoll_runtime(),
        Driver::IoUring => {
            if !monoio::utils::detect_uring() {
                return Err(std::io::Error::other(
                    "io_uring was asked for but this kernel does not allow it",
                ));
            }
            uring_runtime()
        }
    }
}

/// An io_uring loop whose completions' task work runs when the shard next enters the kernel (it
/// enters on every tick) rather than interrupting it (`COOP_TASKRUN`): 1.1-1.27x the proxied
/// calls per second on loopback (perf/results/2026-11-25c-per-call.md). Kernels before 5.19 refuse
/// the flag and get a plain ring.
fn uring_runtime() -> std::io::Result<Rt> {
    let build = |coop: bool| {
        let mut ring = io_uring::IoUring::builder();
        if coop {
            ring.setup_coop_taskrun();
        }
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(1024)
            .uring_builder(ring)
            .enable_timer()
            .build()
            .map(monoio::FusionRuntime::Uring)
    };
    build(true).or_else(|_| build(false))
}

fn epoll_runtime() -> std::io::Result<Rt> {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .map(monoio::FusionRuntime::Legacy)
}

pub fn driver_name(rt: &Rt) -> &'static str {
    match rt {
        monoio::FusionRuntime::Uring(_) => "io_uring",
        monoio::FusionRuntime::Legacy(_) => "epoll",
    }
}

fn shard_main(
    index: u16,
    shared: Arc<Shared>,
    inbox: flume::Receiver<LaneMsg>,
    addr: SocketAddr,
    core: Option<usize>,
    driver: Driver,
    ready: flume::Sender<Result<(), String>>,
) {
    if let Some(c) = core {
        if let Err(e) = monoio::utils::bind_to_cpu_set([c]) {
            tracing::warn!(shard = index, core = c, "could not pin the shard: {e}");
        }
    }
    let mut rt = match build_runtime(driver) {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!(
                "shard {index}: cannot build its event loop: {e}"
            )));
            return;
        }
    };
    tracing::info!(shard = index, driver = driver_name(&rt), core = ?core, "shard started");
    rt.block_on(async move {
        let opts = monoio::net::ListenerOpts::new()
            .reuse_port(true)
            .reuse_addr(true)
            .backlog(4096);
        let listener = match monoio::net::TcpListener::bind_with_config(addr, &opts) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(format!("shard {index}: cannot listen on {addr}: {e}")));
                return;
            }
        };
        let ctx = Rc::new_cyclic(|me| ShardCtx {
            me: me.clone(),
            shared: shared.clone(),
            lane: Lane::new(index),
            sessions: Sessions::default(),
            active: std::cell::Cell::new(0),
            auth: Default::default(),
            conns: std::cell::Cell::new(0),
            refusing: std::cell::Cell::new(0),
            answers: Default::default(),
            listeners: Default::default(),
            held: Default::default(),
            calls: Default::default(),
            streams: Default::default(),
        });
        let (stop_tx, mut stop_rx) = local_sync::oneshot::channel::<()>();
        monoio::spawn(inbox_loop(ctx.clone(), inbox, stop_tx));
        monoio::spawn(session_sweeper(ctx.clone()));
        monoio::spawn(memory_trim(ctx.clone()));
        shared.shards_up.fetch_add(1, Ordering::AcqRel);
        let _ = ready.send(Ok(()));
        loop {
            monoio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        monoio::spawn(conn::accept(ctx.clone(), stream, peer));
                    }
                    Err(e) => {
                        tracing::warn!(shard = index, "accept failed: {e}");
                        monoio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = &mut stop_rx => break,
            }
        }
        drop(listener);
        // Drain: requests already accepted finish (bounded), then the loop ends and idle
        // connections close with it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while ctx.active.get() > 0 && Instant::now() < deadline {
            monoio::time::sleep(Duration::from_millis(5)).await;
        }
        if ctx.active.get() > 0 {
            tracing::warn!(shard = index, left = ctx.active.get(), "drain timed out");
        }
    });
}

/// Messages from other threads to this shard.
pub(crate) async fn inbox_loop(
    ctx: Rc<ShardCtx>,
    inbox: flume::Receiver<LaneMsg>,
    stop: local_sync::oneshot::Sender<()>,
) {
    let mut stop = Some(stop);
    while let Ok(msg) = inbox.recv_async().await {
        match msg {
            LaneMsg::Reply { upstream, frame } => ctx.lane.complete(upstream, frame),
            LaneMsg::Interim {
                upstream,
                id,
                frame,
            } => ctx.lane.interim(upstream, id, frame),
            LaneMsg::ClientAnswer { session, frame } => {
                crate::mcp::relay::deliver_answer(&ctx, session, frame)
            }
            LaneMsg::ListsChanged(roles) => ctx.listeners.lists_changed(&roles),
            LaneMsg::Resume(r) => crate::mcp::hold::resume_for_other(ctx.clone(), r),
            LaneMsg::Cancel { session, id } => {
                crate::mcp::relay::cancel(&ctx, session, &id, "cancelled by the client")
            }
            LaneMsg::ResourceUpdated {
                upstream,
                uri,
                session,
            } => crate::mcp::listen::on_resource_updated(&ctx, upstream, &uri, session),
            LaneMsg::Failed {
                upstream,
                id,
                error,
            } => ctx.lane.fail(upstream, id, error),
            LaneMsg::UpstreamGone { upstream, error } => ctx.lane.fail_upstream(upstream, &error),
            LaneMsg::Session(m) => crate::mcp::front::session_msg(&ctx, m),
            LaneMsg::Replay(ask) => crate::mcp::resume::replay_for_other(&ctx, ask),
            LaneMsg::Unlinked(u) => crate::mcp::listen::on_unlinked(&ctx, &u),
            LaneMsg::Stop => {
                ctx.listeners.close_all();
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
            }
        }
    }
}

/// mimalloc keeps freed pages for reuse and purges them only when the thread allocates again, so
/// a shard that went quiet after a burst (1,000 sessions closed) held their memory for good. Every
/// 2 s, a shard whose connections went away and that has no request in flight asks its heap to
/// give back what it no longer uses (not under steady load: pages about to be reused stay).
async fn memory_trim(ctx: Rc<ShardCtx>) {
    let mut high = 0;
    loop {
        monoio::time::sleep(Duration::from_secs(2)).await;
        let now = ctx.conns.get();
        high = high.max(now);
        if now < high && ctx.active.get() == 0 {
            // SAFETY: collects the calling thread's own heap; no pointers are involved.
            unsafe { libmimalloc_sys::mi_collect(true) };
            high = now;
        }
    }
}

async fn session_sweeper(ctx: Rc<ShardCtx>) {
    let idle = Duration::from_millis(ctx.shared.config.gateway.session_idle_timeout_ms);
    let every = (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        monoio::time::sleep(every).await;
        ctx.streams.sweep(Duration::from_millis(
            ctx.shared.config.gateway.resume.replay_grace_ms,
        ));
        ctx.listeners.touch_sessions();
        for session in ctx.sessions.expire(ctx.index(), idle) {
            let id = &session.id;
            tracing::debug!(session = %id, "session expired");
            ctx.streams.forget_session(id);
            crate::mcp::session::ended(&ctx.shared, &session);
            for (i, lane) in ctx.shared.lanes.iter().enumerate().skip(1) {
                if i != ctx.index() as usize {
                    let _ = lane.send(LaneMsg::Session(SessionMsg::Forget {
                        id: id.clone(),
                        ack: None,
                    }));
                }
            }
        }
    }
}
