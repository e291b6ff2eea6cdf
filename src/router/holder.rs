//! The live index and its builder: shards read the current [`RouterIndex`] through an `ArcSwap`
//! (no lock, never a half-built index); one builder thread rebuilds on every catalog change, keeps
//! only the newest pending request, and swaps the finished index in whole.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};

use super::index::{IndexConfig, RouterIndex};
use super::text::ToolDoc;

/// Shared handle to the current index; cloning is cheap (one `Arc`).
#[derive(Clone, Debug)]
pub struct RouterHandle {
    current: Arc<ArcSwap<RouterIndex>>,
}

impl RouterHandle {
    /// A handle holding an empty index (generation 0) built with `config`; later builds keep
    /// using that config unless [`IndexBuilder::rebuild_with`] changes it.
    pub fn empty(config: IndexConfig) -> RouterHandle {
        RouterHandle::new(RouterIndex::build(0, &[], config))
    }

    pub fn new(index: RouterIndex) -> RouterHandle {
        RouterHandle {
            current: Arc::new(ArcSwap::from_pointee(index)),
        }
    }

    /// The current index, for one query or a few: cheap, lock-free, and it stays valid while
    /// held even if a newer index is swapped in meanwhile.
    #[inline]
    pub fn load(&self) -> Guard<Arc<RouterIndex>> {
        self.current.load()
    }

    /// The current index as an owned `Arc` (to keep across many operations).
    pub fn load_full(&self) -> Arc<RouterIndex> {
        self.current.load_full()
    }

    /// Swap in `index` unless the current one is from a newer generation. Returns whether it
    /// was swapped in.
    pub fn publish(&self, index: RouterIndex) -> bool {
        let index = Arc::new(index);
        let mut swapped = false;
        self.current.rcu(|cur| {
            if cur.generation() > index.generation() {
                swapped = false;
                Arc::clone(cur)
            } else {
                swapped = true;
                Arc::clone(&index)
            }
        });
        swapped
    }

    /// Wait (polling) until the current index is at least `generation`. For tests, tools and
    /// start-up; never on a shard.
    pub fn wait_for(&self, generation: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.current.load().generation() >= generation {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The builder thread is gone (it panicked or was shut down); the request was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the routing index builder has stopped")]
pub struct BuilderGone;

struct Job {
    generation: u64,
    docs: Vec<ToolDoc>,
    config: Option<IndexConfig>,
}

/// The builder thread. Dropping it (or [`IndexBuilder::shutdown`]) lets it finish the build in
/// progress and stop.
#[derive(Debug)]
pub struct IndexBuilder {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl IndexBuilder {
    /// Start the builder thread (`switchyard-index`), publishing into `handle`.
    pub fn spawn(handle: RouterHandle) -> std::io::Result<IndexBuilder> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("switchyard-index".into())
            .spawn(move || builder_loop(&handle, &rx))?;
        Ok(IndexBuilder {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Rebuild from `docs` (the catalog's tools in catalog order: hit indices are positions in
    /// this list) for catalog `generation`, with the current index's config. Returns at once; a
    /// request still pending when a newer one arrives is dropped unbuilt.
    pub fn rebuild(&self, generation: u64, docs: Vec<ToolDoc>) -> Result<(), BuilderGone> {
        self.send(Job {
            generation,
            docs,
            config: None,
        })
    }

    /// Like [`IndexBuilder::rebuild`], with a new config (a reload changed it).
    pub fn rebuild_with(
        &self,
        generation: u64,
        docs: Vec<ToolDoc>,
        config: IndexConfig,
    ) -> Result<(), BuilderGone> {
        self.send(Job {
            generation,
            docs,
            config: Some(config),
        })
    }

    fn send(&self, job: Job) -> Result<(), BuilderGone> {
        match &self.tx {
            Some(tx) => tx.send(job).map_err(|_| BuilderGone),
            None => Err(BuilderGone),
        }
    }

    /// Stop after the build in progress (pending requests are dropped) and join the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("routing index builder panicked");
            }
        }
    }
}

impl Drop for IndexBuilder {
    fn drop(&mut self) {
        self.stop();
    }
}

fn builder_loop(handle: &RouterHandle, rx: &mpsc::Receiver<Job>) {
    while let Ok(mut job) = rx.recv() {
        // Coalesce: only the newest request matters.
        while let Ok(newer) = rx.try_recv() {
            job = newer;
        }
        let config = job.config.unwrap_or(*handle.load().config());
        let index = RouterIndex::build(job.generation, &job.docs, config);
        let (tools, took) = (index.len(), index.build_time());
        if handle.publish(index) {
            tracing::info!(
                generation = job.generation,
                tools,
                build_ms = took.as_secs_f64() * 1e3,
                "routing index swapped in"
            );
        } else {
            tracing::debug!(
                generation = job.generation,
                "routing index build superseded"
            );
        }
    }
}
