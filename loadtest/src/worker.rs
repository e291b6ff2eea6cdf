//! One worker thread: its own current-thread runtime, connections, agents, schedule and recorder.
//!
//! Phases: *setup* (open every connection; in the legacy era each agent sends `initialize` and
//! `notifications/initialized` and keeps its `Mcp-Session-Id`), a wait for the common start
//! instant, the *load*, then (legacy) `DELETE` of the sessions. Nothing is shared with other
//! workers while the load runs; the recorder is merged by the run at the end.
//!
//! Open loop: the scheduler puts each arrival on the worker's FIFO queue at its intended time and
//! an idle connection takes it; latency counts from the intended time, so waiting in the queue
//! (all connections busy with a slow server) is part of it — see `schedule` on coordinated
//! omission. Closed loop: each connection sends its next request as soon as the last one is
//! answered. At the end, queued arrivals are recorded as unsent; requests in flight finish (or
//! time out) and are counted.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::LocalSet;

use crate::answer::{self, ErrorKind, Expect};
use crate::client::{Conn, ExchangeError};
use crate::mix::Picker;
use crate::request::{self, Era, RequestTemplate};
use crate::schedule::{reduce_timer_slack, PreciseTimer, RateSchedule};
use crate::stats::{Completion, Interval, Recorder, Totals};
use crate::target::Target;

/// Open or closed loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// A fixed total arrival rate (requests per second), latency from the intended send time.
    Open { rate: f64 },
    /// Every connection sends back to back.
    Closed,
}

/// What every worker of a run shares (read-only).
pub struct Plan {
    pub target: Target,
    pub era: Era,
    pub templates: Vec<RequestTemplate>,
    pub weights: Vec<u32>,
    pub extra_headers: Vec<u8>,
    pub mode: Mode,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    pub workers: usize,
}

/// This worker's part of the run.
#[derive(Debug, Clone, Copy)]
pub struct Share {
    pub index: usize,
    pub agents: usize,
    pub connections: usize,
}

/// What a worker tells the run.
pub enum Msg {
    Ready {
        result: Result<(), String>,
    },
    Interval {
        index: u32,
        secs: f64,
        interval: Box<Interval>,
    },
    Done {
        totals: Box<Totals>,
    },
}

/// Runs one worker on the current thread until its load is done.
pub fn run(plan: Arc<Plan>, share: Share, tx: Sender<Msg>, start_rx: Receiver<Option<Instant>>) {
    reduce_timer_slack();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = tx.send(Msg::Ready {
                result: Err(format!("cannot start a runtime: {e}")),
            });
            return;
        }
    };
    let local = LocalSet::new();
    let (conns, sessions) = match local.block_on(&rt, setup(plan.clone(), share)) {
        Ok(v) => {
            let _ = tx.send(Msg::Ready { result: Ok(()) });
            v
        }
        Err(e) => {
            let _ = tx.send(Msg::Ready { result: Err(e) });
            return;
        }
    };
    let Ok(Some(start)) = start_rx.recv() else {
        return;
    };
    let sessions = Rc::new(sessions);
    let (totals, conns) = local.block_on(
        &rt,
        load(
            plan.clone(),
            share,
            conns,
            sessions.clone(),
            start,
            tx.clone(),
        ),
    );
    if plan.era == Era::Legacy {
        local.block_on(&rt, cleanup(&plan, conns, &sessions));
    }
    let _ = tx.send(Msg::Done {
        totals: Box::new(totals),
    });
}

type Setup = (Vec<Conn>, Vec<Option<String>>);

async fn setup(plan: Arc<Plan>, share: Share) -> Result<Setup, String> {
    let mut conns = Vec::with_capacity(share.connections);
    for _ in 0..share.connections {
        let mut c = Conn::new(plan.target.addr);
        c.ensure_open()
            .await
            .map_err(|e| format!("cannot connect to {}: {}", plan.target.url, describe(&e)))?;
        conns.push(c);
    }
    let mut sessions = vec![None; share.agents];
    if plan.era != Era::Legacy {
        return Ok((conns, sessions));
    }
    let mut tasks = Vec::new();
    for (ci, mut conn) in conns.into_iter().enumerate() {
        let agents: Vec<usize> = (ci..share.agents).step_by(share.connections).collect();
        let plan = plan.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut got = Vec::new();
            for a in agents {
                match initialize(&plan, &mut conn).await {
                    Ok(sid) => got.push((a, sid)),
                    Err(e) => return (conn, Err(format!("agent {a}: {e}"))),
                }
            }
            (conn, Ok(got))
        }));
    }
    let mut conns = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (conn, got) = t.await.map_err(|e| format!("setup task failed: {e}"))?;
        conns.push(conn);
        for (a, sid) in got? {
            if let Some(slot) = sessions.get_mut(a) {
                *slot = sid;
            }
        }
    }
    Ok((conns, sessions))
}

/// The legacy handshake of one agent; returns its session id. A server may assign none (the
/// spec's "MAY"; MCPlex, for one, keeps no sessions): the agent then sends no `Mcp-Session-Id`.
async fn initialize(plan: &Plan, conn: &mut Conn) -> Result<Option<String>, String> {
    let req = request::initialize(&plan.target, &plan.extra_headers);
    let (status, sid, verdict, excerpt) = {
        let reply = tokio::time::timeout(plan.timeout, conn.exchange(&req))
            .await
            .map_err(|_| "initialize timed out".to_string())?
            .map_err(|e| format!("initialize: {}", describe(&e)))?;
        let expect = Expect {
            id: 0,
            echo_seq: false,
            tool_call: false,
        };
        let verdict = answer::classify(reply.status, reply.event_stream, reply.body, expect);
        (
            reply.status,
            reply.session_id.clone(),
            verdict,
            excerpt(reply.body),
        )
    };
    if let Err(kind) = verdict {
        return Err(format!(
            "initialize answered {kind} (HTTP {status}): {excerpt}"
        ));
    }
    let note = request::initialized(&plan.target, sid.as_deref(), &plan.extra_headers);
    let status = tokio::time::timeout(plan.timeout, conn.exchange(&note))
        .await
        .map_err(|_| "notifications/initialized timed out".to_string())?
        .map_err(|e| format!("notifications/initialized: {}", describe(&e)))?
        .status;
    if !(200..300).contains(&status) {
        return Err(format!("notifications/initialized answered HTTP {status}"));
    }
    Ok(sid)
}

async fn cleanup(plan: &Plan, mut conns: Vec<Conn>, sessions: &[Option<String>]) {
    if conns.is_empty() {
        return;
    }
    let n = conns.len();
    for (i, sid) in sessions.iter().enumerate() {
        if let (Some(sid), Some(conn)) = (sid, conns.get_mut(i % n)) {
            let req = request::delete_session(&plan.target, sid, &plan.extra_headers);
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.exchange(&req)).await;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Job {
    seq: u64,
    agent: usize,
    entry: usize,
    /// Open loop: when it should have been sent.
    intended: Option<Instant>,
}

struct Shared {
    plan: Arc<Plan>,
    share: Share,
    sessions: Rc<Vec<Option<String>>>,
    rec: RefCell<Recorder>,
    queue: RefCell<VecDeque<Job>>,
    notify: Notify,
    closing: Cell<bool>,
    inflight: Cell<u64>,
    picker: RefCell<Picker>,
    /// Closed loop: this worker's request count.
    next_local: Cell<u64>,
    end: Instant,
}

async fn load(
    plan: Arc<Plan>,
    share: Share,
    conns: Vec<Conn>,
    sessions: Rc<Vec<Option<String>>>,
    start: Instant,
    tx: Sender<Msg>,
) -> (Totals, Vec<Conn>) {
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let shared = Rc::new(Shared {
        picker: RefCell::new(Picker::new(&plan.weights)),
        plan,
        share,
        sessions,
        rec: RefCell::new(Recorder::new(measure_from, end)),
        queue: RefCell::new(VecDeque::new()),
        notify: Notify::new(),
        closing: Cell::new(false),
        inflight: Cell::new(0),
        next_local: Cell::new(0),
        end,
    });
    let ticker = tokio::task::spawn_local(ticker(shared.clone(), start, tx));
    if shared.plan.mode == Mode::Closed {
        // Open loop waits for `start` on the precise timer, in the scheduler.
        tokio::time::sleep_until(start.into()).await;
    }
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::task::spawn_local(connection(shared.clone(), c)))
        .collect();
    if let Mode::Open { rate } = shared.plan.mode {
        schedule(&shared, rate, start).await;
    }
    let mut conns = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(c) = t.await {
            conns.push(c);
        }
    }
    let _ = ticker.await;
    let mut totals = std::mem::take(&mut shared.rec.borrow_mut().totals);
    totals.reconnects = conns.iter().map(|c| c.reconnects).sum();
    (totals, conns)
}

/// Open loop: hands out arrivals at their intended times until the end, then stops the queue.
async fn schedule(shared: &Shared, rate: f64, start: Instant) {
    let (workers, worker) = (shared.plan.workers, shared.share.index);
    let mut sched = RateSchedule::new(start, rate, workers, worker);
    let mut timer = PreciseTimer::new().ok();
    let mut due = Vec::new();
    let mut local_k = 0u64;
    let agents = shared.share.agents.max(1) as u64;
    loop {
        let now = Instant::now();
        sched.take_due(now, shared.end, &mut due);
        for (seq, intended) in due.drain(..) {
            shared.rec.borrow_mut().scheduled(intended, now);
            let agent = (local_k % agents) as usize;
            local_k += 1;
            let entry = shared.picker.borrow_mut().next_index();
            shared.queue.borrow_mut().push_back(Job {
                seq,
                agent,
                entry,
                intended: Some(intended),
            });
            shared.notify.notify_one();
        }
        let next = sched.peek();
        if next >= shared.end {
            break;
        }
        sleep_until(&mut timer, next).await;
    }
    sleep_until(&mut timer, shared.end).await;
    shared.closing.set(true);
    let now = Instant::now();
    let left: Vec<Job> = shared.queue.borrow_mut().drain(..).collect();
    let mut rec = shared.rec.borrow_mut();
    for job in left {
        if let Some(intended) = job.intended {
            rec.unsent(intended, now);
        }
    }
    shared.notify.notify_waiters();
}

async fn sleep_until(timer: &mut Option<PreciseTimer>, at: Instant) {
    if let Some(t) = timer {
        if t.sleep_until(at).await.is_ok() {
            return;
        }
    }
    // No timerfd: tokio's millisecond timer (the scheduler lag figure shows the cost).
    tokio::time::sleep_until(at.into()).await;
}

/// One connection's loop; gives the connection back for the session cleanup.
async fn connection(shared: Rc<Shared>, mut conn: Conn) -> Conn {
    let mut out = Vec::with_capacity(1024);
    match shared.plan.mode {
        Mode::Closed => {
            let (workers, worker) = (shared.plan.workers as u64, shared.share.index as u64);
            let agents = shared.share.agents.max(1) as u64;
            while Instant::now() < shared.end {
                let k = shared.next_local.get();
                shared.next_local.set(k + 1);
                let entry = shared.picker.borrow_mut().next_index();
                let job = Job {
                    seq: k * workers + worker,
                    agent: (k % agents) as usize,
                    entry,
                    intended: None,
                };
                send(&shared, &mut conn, &mut out, job).await;
            }
        }
        Mode::Open { .. } => loop {
            let job = loop {
                if let Some(j) = shared.queue.borrow_mut().pop_front() {
                    break Some(j);
                }
                if shared.closing.get() {
                    break None;
                }
                shared.notify.notified().await;
            };
            let Some(job) = job else { break };
            send(&shared, &mut conn, &mut out, job).await;
        },
    }
    conn
}

/// Sends one request, waits for its answer and records the outcome.
async fn send(shared: &Shared, conn: &mut Conn, out: &mut Vec<u8>, job: Job) {
    let plan = &shared.plan;
    let Some(tmpl) = plan.templates.get(job.entry) else {
        return;
    };
    let session = shared.sessions.get(job.agent).and_then(|s| s.as_deref());
    tmpl.render(job.seq, session, out);
    let expect = Expect {
        id: job.seq,
        echo_seq: tmpl.verify,
        tool_call: tmpl.tool_call,
    };
    let sent = Instant::now();
    shared.inflight.set(shared.inflight.get() + 1);
    let res = tokio::time::timeout(plan.timeout, conn.exchange(out)).await;
    let done = Instant::now();
    let (answered, result, back_off) = match res {
        Ok(Ok(reply)) => (
            true,
            answer::classify(reply.status, reply.event_stream, reply.body, expect),
            false,
        ),
        Ok(Err(ExchangeError::Connect(_))) => (false, Err(ErrorKind::Connect), true),
        Ok(Err(ExchangeError::Io(_))) => (false, Err(ErrorKind::Io), false),
        Ok(Err(ExchangeError::Wire(_))) => (false, Err(ErrorKind::Protocol), false),
        Err(_) => (false, Err(ErrorKind::Timeout), false),
    };
    if matches!(result, Err(ErrorKind::Timeout)) {
        conn.reset();
    }
    shared.inflight.set(shared.inflight.get().saturating_sub(1));
    shared.rec.borrow_mut().complete(Completion {
        reference: job.intended.unwrap_or(sent),
        sent,
        done,
        answered,
        result,
    });
    if back_off {
        // A refused connection fails in microseconds: do not spin on it.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Hands the run one interval per second (the last one ends at the end of the load).
async fn ticker(shared: Rc<Shared>, start: Instant, tx: Sender<Msg>) {
    let mut prev = start;
    for index in 1u32.. {
        let at = (start + Duration::from_secs(u64::from(index))).min(shared.end);
        tokio::time::sleep_until(at.into()).await;
        let interval = {
            let queued = shared.queue.borrow().len() as u64;
            shared
                .rec
                .borrow_mut()
                .take_interval(shared.inflight.get(), queued)
        };
        let _ = tx.send(Msg::Interval {
            index,
            secs: at.saturating_duration_since(prev).as_secs_f64(),
            interval: Box::new(interval),
        });
        prev = at;
        if at >= shared.end {
            break;
        }
    }
}

fn describe(e: &ExchangeError) -> String {
    match e {
        ExchangeError::Connect(e) => format!("connect: {e}"),
        ExchangeError::Io(e) => format!("connection: {e}"),
        ExchangeError::Wire(e) => e.to_string(),
    }
}

/// The start of a body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(200)]);
    s.replace(['\r', '\n'], " ")
}
