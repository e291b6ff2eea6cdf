//! A lane: one event loop's share of upstream traffic — its pending-request table, its id sequence and
//! its pooled upstream HTTP connections. Shards are lanes 1..=N, the control thread is lane 0.
//!
//! Upstream request ids carry the lane in their high bits (`lane << 40 | seq`), so whoever reads an
//! upstream's replies (a stdio or legacy SSE reader thread) routes each one to the lane that sent it
//! without any shared table; the table itself is lane-local and needs no lock.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use hashbrown::HashMap;
use monoio::net::TcpStream;

use crate::error::{Error, ErrorKind};
use crate::jsonrpc::Frame;

/// Bits of an upstream id below the lane number.
pub const LANE_SHIFT: u32 = 40;

/// Split an upstream id into (lane, sequence).
pub fn split_id(id: u64) -> (u16, u64) {
    ((id >> LANE_SHIFT) as u16, id & ((1 << LANE_SHIFT) - 1))
}

/// What a lane hands to a waiting call: messages the upstream sent while serving it (progress, log
/// lines, server-to-client requests), then the reply.
pub enum Delivery {
    Interim(Frame),
    Final(Result<Frame, Error>),
}

struct Pending {
    upstream: u16,
    tx: local_sync::mpsc::unbounded::Tx<Delivery>,
}

/// Idle keep-alive connections to HTTP upstreams, per upstream.
type Pools = HashMap<u16, Vec<TcpStream>>;

pub struct Lane {
    pub index: u16,
    next_seq: Cell<u64>,
    pending: RefCell<HashMap<u64, Pending>>,
    pools: RefCell<Pools>,
}

/// What a caller awaits for one upstream request.
pub struct Waiter {
    pub id: u64,
    rx: local_sync::mpsc::unbounded::Rx<Delivery>,
    /// Dropped with the waiter: stops the task that produces its deliveries, if one does.
    _stop: Option<local_sync::oneshot::Sender<()>>,
}

impl Waiter {
    /// This waiter, stopping a producing task (its `stop` receiver) when dropped.
    pub fn with_stop(mut self, stop: local_sync::oneshot::Sender<()>) -> Waiter {
        self._stop = Some(stop);
        self
    }

    /// The next delivery for this request; `None` when the lane dropped it.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }
}

impl Lane {
    pub fn new(index: u16) -> Lane {
        Lane {
            index,
            next_seq: Cell::new(1),
            pending: RefCell::new(HashMap::new()),
            pools: RefCell::new(HashMap::new()),
        }
    }

    /// A fresh upstream id on this lane.
    pub fn next_id(&self) -> u64 {
        let seq = self.next_seq.get();
        self.next_seq.set((seq + 1) & ((1 << LANE_SHIFT) - 1));
        ((self.index as u64) << LANE_SHIFT) | seq
    }

    /// Register a request sent to `upstream` with id `id`.
    pub fn expect(&self, id: u64, upstream: u16) -> Waiter {
        let (tx, rx) = local_sync::mpsc::unbounded::channel();
        self.pending
            .borrow_mut()
            .insert(id, Pending { upstream, tx });
        Waiter {
            id,
            rx,
            _stop: None,
        }
    }

    /// Forget a request (timed out or failed to send).
    pub fn forget(&self, id: u64) {
        self.pending.borrow_mut().remove(&id);
    }

    /// A reply arrived for one of this lane's requests.
    pub fn complete(&self, upstream: u16, frame: Frame) {
        let Some(id) = frame.id_u64() else { return };
        let mut pending = self.pending.borrow_mut();
        match pending.get(&id) {
            Some(p) if p.upstream == upstream => {}
            _ => {
                tracing::debug!(
                    upstream,
                    id,
                    "reply for no pending request (late or unknown); dropped"
                );
                return;
            }
        }
        if let Some(p) = pending.remove(&id) {
            let _ = p.tx.send(Delivery::Final(Ok(frame)));
        }
    }

    /// Request `id` failed before any reply (it could not be delivered).
    pub fn fail(&self, upstream: u16, id: u64, error: Error) {
        let mut pending = self.pending.borrow_mut();
        if pending.get(&id).is_some_and(|p| p.upstream == upstream) {
            if let Some(p) = pending.remove(&id) {
                let _ = p.tx.send(Delivery::Final(Err(error)));
            }
        }
    }

    /// A message the upstream sent while serving request `id` (routed by a progress token or by
    /// the stdio or SSE reader's attribution); late ones, for calls already answered, are dropped.
    pub fn interim(&self, upstream: u16, id: u64, frame: Frame) {
        match self.pending.borrow().get(&id) {
            Some(p) if p.upstream == upstream => {
                let _ = p.tx.send(Delivery::Interim(frame));
            }
            _ => tracing::debug!(upstream, id, "a message for no pending request; dropped"),
        }
    }

    /// An upstream went away: every request this lane has in flight there fails now.
    pub fn fail_upstream(&self, upstream: u16, error: &Error) {
        let mut pending = self.pending.borrow_mut();
        let ids: Vec<u64> = pending
            .iter()
            .filter(|(_, p)| p.upstream == upstream)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(p) = pending.remove(&id) {
                let _ = p.tx.send(Delivery::Final(Err(error.clone())));
            }
        }
        self.pools.borrow_mut().remove(&upstream);
    }

    /// Wait for a registered request's reply, at most `timeout`, handing interim messages to
    /// `on_interim` as they come.
    pub async fn wait(
        &self,
        mut w: Waiter,
        timeout: Duration,
        server: &str,
        on_interim: &dyn Fn(Frame),
    ) -> Result<Frame, Error> {
        let deadline = monoio::time::Instant::now() + timeout;
        loop {
            match monoio::time::timeout_at(deadline, w.rx.recv()).await {
                Ok(Some(Delivery::Final(res))) => return res,
                Ok(Some(Delivery::Interim(f))) => on_interim(f),
                Ok(None) => {
                    return Err(Error::upstream(
                        ErrorKind::UpstreamUnavailable,
                        format!("server {server:?} went away before answering"),
                    ))
                }
                Err(_) => {
                    self.forget(w.id);
                    return Err(Error::upstream(
                        ErrorKind::UpstreamTimeout,
                        format!(
                            "server {server:?} did not answer within {} ms",
                            timeout.as_millis()
                        ),
                    ));
                }
            }
        }
    }

    pub fn take_conn(&self, upstream: u16) -> Option<TcpStream> {
        self.pools
            .borrow_mut()
            .get_mut(&upstream)
            .and_then(Vec::pop)
    }

    pub fn put_conn(&self, upstream: u16, conn: TcpStream) {
        let mut pools = self.pools.borrow_mut();
        let pool = pools.entry(upstream).or_default();
        // Bound idle connections per upstream per lane; extra ones are closed.
        if pool.len() < 64 {
            pool.push(conn);
        }
    }

    pub fn in_flight(&self) -> usize {
        self.pending.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_lane() {
        let lane = Lane::new(3);
        let a = lane.next_id();
        let b = lane.next_id();
        assert_eq!(split_id(a), (3, 1));
        assert_eq!(split_id(b), (3, 2));
        assert!(
            a < (1u64 << 53),
            "ids must stay exact in JavaScript numbers"
        );
    }
}
