//! Resource subscriptions held on shared legacy upstreams for clients: legacy sessions'
//! `resources/subscribe` and 2026-07-28 listen streams' `resourceSubscriptions`. One upstream
//! connection serves many clients, so the control thread counts holders per (upstream, URI): the
//! server hears `resources/subscribe` when the first client subscribes, `resources/unsubscribe`
//! when the last one leaves (unsubscribes, its session ends, its listen stream closes), and
//! `resources/subscribe` again for what is held after it restarts. Its `resources/updated` then
//! reaches each holder through `mcp::listen`.

use hashbrown::HashMap;

use crate::error::{Error, ErrorKind};
use crate::jsonrpc::Frame;
use crate::shard::{ControlMsg, Shared};

/// The answer to a subscriber: the server's own reply when this subscription asked it, `None`
/// when the subscription was already held (the answer is an empty result).
pub type Outcome = Result<Option<Frame>, Error>;
pub type Reply = flume::Sender<Outcome>;

struct Entry {
    holders: u32,
    /// Waiting for the server's answer to `resources/subscribe` (the first holder's and those
    /// that came meanwhile).
    pending: Option<Vec<Reply>>,
}

/// The control thread's count of holders (single owner; no locks).
#[derive(Default)]
pub struct Book {
    entries: HashMap<(u16, Box<str>), Entry>,
}

impl Book {
    /// A client subscribes to `uri` of `upstream`. True when the caller must now send
    /// `resources/subscribe` to the server (then call `subscribed`); otherwise `reply` is answered
    /// or queued.
    pub fn subscribe(&mut self, upstream: u16, uri: &str, reply: Reply) -> bool {
        match self.entries.get_mut(&(upstream, Box::from(uri))) {
            Some(e) => {
                e.holders += 1;
                match &mut e.pending {
                    Some(waiting) => waiting.push(reply),
                    None => {
                        let _ = reply.send(Ok(None));
                    }
                }
                false
            }
            None => {
                self.entries.insert(
                    (upstream, uri.into()),
                    Entry {
                        holders: 1,
                        pending: Some(vec![reply]),
                    },
                );
                true
            }
        }
    }

    /// The server answered the `resources/subscribe` for `uri`. A refusal (error or error
    /// response) goes to every waiter and nobody holds it. True when every holder left meanwhile:
    /// the caller must send `resources/unsubscribe`.
    pub fn subscribed(&mut self, upstream: u16, uri: &str, outcome: Result<Frame, Error>) -> bool {
        let key = (upstream, Box::from(uri));
        let Some(e) = self.entries.get_mut(&key) else {
            return false;
        };
        let waiting = e.pending.take().unwrap_or_default();
        let holders = e.holders;
        let refused = match &outcome {
            Ok(f) => f.kind == crate::jsonrpc::Kind::ErrorResponse,
            Err(_) => true,
        };
        for w in waiting {
            let _ = w.send(outcome.clone().map(Some));
        }
        if refused || holders == 0 {
            self.entries.remove(&key);
        }
        !refused && holders == 0
    }

    /// A holder lets go of `uri`. True when it was the last one and the server holds it: the
    /// caller must send `resources/unsubscribe`.
    pub fn unsubscribe(&mut self, upstream: u16, uri: &str) -> bool {
        let key = (upstream, Box::from(uri));
        let Some(e) = self.entries.get_mut(&key) else {
            return false;
        };
        e.holders = e.holders.saturating_sub(1);
        if e.holders > 0 || e.pending.is_some() {
            return false;
        }
        self.entries.remove(&key);
        true
    }

    /// What is held on `upstream` (to subscribe again after it restarted).
    pub fn held_on(&self, upstream: u16) -> Vec<Box<str>> {
        self.entries
            .iter()
            .filter(|((u, _), e)| *u == upstream && e.pending.is_none())
            .map(|((_, uri), _)| uri.clone())
            .collect()
    }

    /// How many clients hold `uri` of `upstream`.
    pub fn holders(&self, upstream: u16, uri: &str) -> u32 {
        self.entries
            .get(&(upstream, Box::from(uri)))
            .map_or(0, |e| e.holders)
    }
}

/// On a shard: hold `uri` (the server's own URI) of shared upstream `upstream` for a client.
pub async fn hold(shared: &Shared, upstream: u16, uri: &str) -> Outcome {
    let (reply, answer) = flume::bounded(1);
    let stopping = || {
        Error::new(
            ErrorKind::ShuttingDown,
            crate::error::Source::Internal,
            "the gateway is stopping",
        )
    };
    shared
        .control
        .send(ControlMsg::Subscribe {
            upstream,
            uri: uri.into(),
            reply,
        })
        .map_err(|_| stopping())?;
    answer.recv_async().await.map_err(|_| stopping())?
}

/// On a shard: a client lets go of what `hold` gave it.
pub fn let_go(shared: &Shared, upstream: u16, uri: &str) {
    let _ = shared.control.send(ControlMsg::Unsubscribe {
        upstream,
        uri: uri.into(),
    });
}

/// What a listen stream holds, let go when the stream ends (kept alive by its sink).
pub struct Held {
    pub shared: std::sync::Arc<Shared>,
    pub uris: Vec<(u16, Box<str>)>,
}

impl Drop for Held {
    fn drop(&mut self) {
        for (upstream, uri) in &self.uris {
            let_go(&self.shared, *upstream, uri);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn reply(text: &str) -> Frame {
        Frame::parse(Bytes::from(text.to_owned())).expect("frame")
    }

    #[test]
    fn the_server_hears_the_first_subscribe_and_the_last_unsubscribe() {
        let mut b = Book::default();
        let (tx, rx) = flume::unbounded();
        assert!(
            b.subscribe(0, "demo://a", tx.clone()),
            "first: ask the server"
        );
        assert!(
            !b.subscribe(0, "demo://a", tx.clone()),
            "second: wait with it"
        );
        assert!(rx.try_recv().is_err(), "nobody answered before the server");
        assert!(!b.subscribed(
            0,
            "demo://a",
            Ok(reply(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#))
        ));
        let got: Vec<bool> = rx.try_iter().map(|o| matches!(o, Ok(Some(_)))).collect();
        assert_eq!(got, [true, true], "both get the server's answer");
        assert!(!b.subscribe(0, "demo://a", tx), "a third: held already");
        assert!(matches!(rx.try_recv(), Ok(Ok(None))));
        assert_eq!(b.holders(0, "demo://a"), 3);
        assert_eq!(b.held_on(0), vec![Box::<str>::from("demo://a")]);
        assert!(b.held_on(1).is_empty());
        assert!(!b.unsubscribe(0, "demo://a"));
        assert!(!b.unsubscribe(0, "demo://a"));
        assert!(
            b.unsubscribe(0, "demo://a"),
            "the last one leaves: tell the server"
        );
        assert!(!b.unsubscribe(0, "demo://a"), "nothing held any more");
    }

    #[test]
    fn a_refusal_reaches_every_waiter_and_holds_nothing() {
        let mut b = Book::default();
        let (tx, rx) = flume::unbounded();
        assert!(b.subscribe(0, "demo://x", tx.clone()));
        assert!(!b.subscribe(0, "demo://x", tx.clone()));
        let refusal = reply(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"no"}}"#);
        assert!(!b.subscribed(0, "demo://x", Ok(refusal)));
        assert_eq!(rx.try_iter().count(), 2);
        assert_eq!(b.holders(0, "demo://x"), 0);
        assert!(b.subscribe(0, "demo://x", tx), "asked again next time");
        let gone = Error::upstream(ErrorKind::UpstreamUnavailable, "down");
        assert!(!b.subscribed(0, "demo://x", Err(gone)));
        assert!(matches!(rx.try_recv(), Ok(Err(_))));
        assert_eq!(b.holders(0, "demo://x"), 0);
    }

    #[test]
    fn leaving_while_the_server_is_asked_unsubscribes_once_it_answers() {
        let mut b = Book::default();
        let (tx, _rx) = flume::unbounded();
        assert!(b.subscribe(0, "demo://a", tx));
        assert!(!b.unsubscribe(0, "demo://a"), "not while it is being asked");
        assert!(b.subscribed(
            0,
            "demo://a",
            Ok(reply(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#))
        ));
        assert_eq!(b.holders(0, "demo://a"), 0);
    }
}
