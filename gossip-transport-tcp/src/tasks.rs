//! Every task of a transport: spawned into one `JoinSet`, stopped by one
//! `CancellationToken`, counted while alive.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Locks a std mutex, ignoring poisoning: the data behind every mutex of this
/// crate stays consistent across a panic (plain pushes, pops and inserts).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The number of tasks of one transport that have not yet ended (finished,
/// cancelled or aborted). For tests of shutdown; not a stable API.
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct LiveTasks(Arc<AtomicUsize>);

impl LiveTasks {
    /// Tasks still alive.
    pub fn get(&self) -> usize {
        self.0.load(SeqCst)
    }
}

/// Decrements the live count when the task's future is dropped, however it
/// ends.
struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// The tasks of one transport.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    set: Mutex<JoinSet<()>>,
    live: LiveTasks,
    pub(crate) cancel: CancellationToken,
}

impl Tasks {
    /// Spawns `fut` on the current runtime, unless the transport is shutting
    /// down; returns whether it was spawned. Must be called from a runtime.
    pub(crate) fn spawn<F>(&self, fut: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut set = lock(&self.set);
        // Checked under the lock that `shutdown` takes after cancelling, so a
        // task is either in the set `shutdown` waits for or never spawned.
        if self.cancel.is_cancelled() {
            return false;
        }
        while let Some(done) = set.try_join_next() {
            if let Err(e) = done {
                if e.is_panic() {
                    tracing::error!("tcp transport task panicked: {e}");
                }
            }
        }
        self.live.0.fetch_add(1, SeqCst);
        let alive = Alive(self.live.0.clone());
        set.spawn(async move {
            let _alive = alive;
            fut.await;
        });
        true
    }

    /// The live-task gauge.
    pub(crate) fn live(&self) -> LiveTasks {
        self.live.clone()
    }

    /// Cancels every task and waits for all of them to end; a task that has
    /// not ended after `grace` is aborted.
    pub(crate) async fn shutdown(&self, grace: Duration) {
        self.cancel.cancel();
        let mut set = std::mem::take(&mut *lock(&self.set));
        let drained =
            tokio::time::timeout(grace, async { while set.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                "tcp transport: {} tasks ignored cancellation; aborting them",
                set.len()
            );
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
    }

    /// Cancels every task and aborts them, without waiting (for `Drop`).
    pub(crate) fn abort(&self) {
        self.cancel.cancel();
        lock(&self.set).abort_all();
    }
}
