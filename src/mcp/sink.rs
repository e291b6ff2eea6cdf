//! The messages a request's handler sends to the client before its answer (progress, log lines,
//! server-to-client requests). The connection drains them as SSE events; the first one turns the
//! response into a `text/event-stream`. A request that sends nothing pays for none of it: the
//! queue allocates only when used, and there is no task or channel per request.
//! A legacy request's sink may carry the log that makes its stream resumable (`mcp::resume`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use super::resume::{EventId, Log};
use super::session::Session;

/// One queued message and, when it was already numbered (a replayed or followed event), its id.
pub type Item = (Option<EventId>, Bytes);

#[derive(Default)]
pub struct Sink {
    queue: RefCell<VecDeque<Item>>,
    waker: Cell<Option<Waker>>,
    /// Set once the client is gone: pushes are dropped and handlers can stop early.
    closed: Cell<bool>,
    /// Nothing more will be pushed: the stream ends once the queue is drained.
    finishing: Cell<bool>,
    /// Headers for the stream's head (e.g. `Mcp-Session-Id`), set before anything is pushed.
    pub headers: RefCell<Vec<(&'static str, String)>>,
    /// A legacy request whose answer may become a resumable stream: its session (set by the front).
    pub resumable: RefCell<Option<Arc<Session>>>,
    /// The log this stream's events are numbered and kept in, once it streams resumably.
    pub log: RefCell<Option<Rc<Log>>>,
    /// What lives exactly as long as the stream (a listen stream's upstream subscriptions).
    pub keep: RefCell<Option<Box<dyn std::any::Any>>>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        // Whatever way the stream ended, its log is complete: resumed streams may end too.
        if let Some(log) = self.log.get_mut() {
            log.end();
        }
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("queued", &self.queue.borrow().len())
            .field("closed", &self.closed.get())
            .finish()
    }
}

impl Sink {
    /// Queue one JSON-RPC message (a complete JSON text) for the client.
    pub fn push(&self, msg: Bytes) {
        self.push_item((None, msg));
    }

    /// Queue an event that already has its id (replayed, or followed from another stream).
    pub fn push_event(&self, id: EventId, msg: Bytes) {
        self.push_item((Some(id), msg));
    }

    fn push_item(&self, item: Item) {
        if self.closed.get() || self.finishing.get() {
            return;
        }
        self.queue.borrow_mut().push_back(item);
        self.wake();
    }

    fn wake(&self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// No more messages: the stream ends after the queued ones.
    pub fn finish(&self) {
        self.finishing.set(true);
        self.wake();
    }

    pub fn is_finished(&self) -> bool {
        self.finishing.get() && self.queue.borrow().is_empty()
    }

    pub fn close(&self) {
        self.closed.set(true);
        self.queue.borrow_mut().clear();
        self.wake();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// The next queued message (waits for one); `None` once closed or finished.
    pub fn next(&self) -> Next<'_> {
        Next(self)
    }

    /// A queued message, if any, without waiting.
    pub fn try_next(&self) -> Option<Bytes> {
        self.try_next_event().map(|(_, m)| m)
    }

    /// The next queued message with its id if it has one (waits); `None` once closed or finished.
    pub fn next_event(&self) -> NextEvent<'_> {
        NextEvent(self)
    }

    pub fn try_next_event(&self) -> Option<Item> {
        self.queue.borrow_mut().pop_front()
    }

    fn poll_item(&self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        if self.closed.get() {
            return Poll::Ready(None);
        }
        match self.queue.borrow_mut().pop_front() {
            Some(m) => Poll::Ready(Some(m)),
            None if self.finishing.get() => Poll::Ready(None),
            None => {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}

pub struct Next<'a>(&'a Sink);

impl Future for Next<'_> {
    type Output = Option<Bytes>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.0.poll_item(cx).map(|i| i.map(|(_, m)| m))
    }
}

pub struct NextEvent<'a>(&'a Sink);

impl Future for NextEvent<'_> {
    type Output = Option<Item>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.0.poll_item(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_order_and_close() {
        let s = Sink::default();
        s.push(Bytes::from_static(b"1"));
        s.push(Bytes::from_static(b"2"));
        assert_eq!(s.try_next().as_deref(), Some(&b"1"[..]));
        s.close();
        s.push(Bytes::from_static(b"3"));
        assert!(s.try_next().is_none());
        assert!(s.is_closed());
    }
}
