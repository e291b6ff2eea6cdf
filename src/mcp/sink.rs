//! The messages a request's handler sends to the client before its answer (progress, log lines,
//! server-to-client requests). The connection drains them as SSE events; the first one turns the
//! response into a `text/event-stream`. A request that sends nothing pays for none of it: the
//! queue allocates only when used, and there is no task or channel per request.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

#[derive(Default)]
pub struct Sink {
    queue: RefCell<VecDeque<Bytes>>,
    waker: Cell<Option<Waker>>,
    /// Set once the client is gone: pushes are dropped and handlers can stop early.
    closed: Cell<bool>,
    /// Headers for the stream's head (e.g. `Mcp-Session-Id`), set before anything is pushed.
    pub headers: RefCell<Vec<(&'static str, String)>>,
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
        if self.closed.get() {
            return;
        }
        self.queue.borrow_mut().push_back(msg);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub fn close(&self) {
        self.closed.set(true);
        self.queue.borrow_mut().clear();
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// The next queued message (waits for one); `None` once closed.
    pub fn next(&self) -> Next<'_> {
        Next(self)
    }

    /// A queued message, if any, without waiting.
    pub fn try_next(&self) -> Option<Bytes> {
        self.queue.borrow_mut().pop_front()
    }
}

pub struct Next<'a>(&'a Sink);

impl Future for Next<'_> {
    type Output = Option<Bytes>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.0.closed.get() {
            return Poll::Ready(None);
        }
        match self.0.queue.borrow_mut().pop_front() {
            Some(m) => Poll::Ready(Some(m)),
            None => {
                self.0.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
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
