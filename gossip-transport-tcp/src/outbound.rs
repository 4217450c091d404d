//! Outbound side: one bounded queue and one writer task per peer address,
//! the task owning the (reused) connection to that peer.
//!
//! Lock order: the peer map, then a peer's queue. A queue is only pushed to
//! while the map lock is held and only retired (removed from the map, its
//! task ended) while the map lock is held and the queue is empty or its
//! frames are given up, so no frame is ever pushed to a queue nobody reads.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::io;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use gossip_core::TransportError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::stats::{add, inc};
use crate::tasks::lock;
use crate::Shared;

/// A batch written in one go stops growing past this many bytes (it always
/// holds at least one frame).
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Peer address → its queue.
pub(crate) type PeerMap = Mutex<HashMap<String, Arc<PeerQueue>>>;

/// Frames waiting for one peer, and the wake-up of its writer.
#[derive(Debug)]
pub(crate) struct PeerQueue {
    state: Mutex<QueueState>,
    notify: Notify,
}

#[derive(Debug)]
struct QueueState {
    frames: VecDeque<Bytes>,
    /// When `send` last gave this peer a frame.
    last_push: Instant,
}

impl PeerQueue {
    fn new() -> Self {
        PeerQueue {
            state: Mutex::new(QueueState {
                frames: VecDeque::new(),
                last_push: Instant::now(),
            }),
            notify: Notify::new(),
        }
    }

    /// Appends `frame`, dropping the oldest frame if `cap` are queued; returns
    /// whether one was dropped.
    fn push(&self, frame: Bytes, cap: usize) -> bool {
        let dropped = {
            let mut st = lock(&self.state);
            let dropped = if st.frames.len() >= cap {
                st.frames.pop_front().is_some()
            } else {
                false
            };
            st.frames.push_back(frame);
            st.last_push = Instant::now();
            dropped
        };
        // `notify_one` stores a permit if the writer is not waiting yet, so
        // a push between its emptiness check and its wait is not missed.
        self.notify.notify_one();
        dropped
    }

    fn is_empty(&self) -> bool {
        lock(&self.state).frames.is_empty()
    }

    /// Moves frames into `batch` until it holds `MAX_BATCH_BYTES` (at least
    /// one frame if any is queued).
    fn take_batch(&self, batch: &mut Vec<Bytes>) {
        let mut st = lock(&self.state);
        let mut bytes = 0;
        while let Some(frame) = st.frames.front() {
            if !batch.is_empty() && bytes + frame.len() > MAX_BATCH_BYTES {
                break;
            }
            bytes += frame.len();
            batch.extend(st.frames.pop_front());
        }
    }
}

/// Queues `frame` for `to`, starting its writer task if it has none.
/// `to` has been checked by `addr::check_peer`, `frame` against the size cap.
pub(crate) fn enqueue(shared: &Arc<Shared>, to: &str, frame: Bytes) -> Result<(), TransportError> {
    let mut peers = lock(&shared.peers);
    let queue = match peers.get(to) {
        Some(queue) => queue.clone(),
        None => {
            if peers.len() >= shared.config.max_peers {
                inc(&shared.stats.dropped_too_many_peers);
                tracing::debug!(
                    peer = to,
                    "tcp: frame dropped, max_peers writers already exist"
                );
                return Err(TransportError::Other(format!(
                    "max_peers ({}) peers already have a writer; frame to {to} dropped",
                    shared.config.max_peers
                )));
            }
            let queue = Arc::new(PeerQueue::new());
            let writer = Writer::new(shared.clone(), to.to_string(), queue.clone());
            if !shared.tasks.spawn(writer.run()) {
                return Err(TransportError::Closed);
            }
            inc(&shared.stats.peers);
            peers.insert(to.to_string(), queue.clone());
            queue
        }
    };
    if queue.push(frame, shared.config.send_queue) {
        inc(&shared.stats.dropped_queue_full);
        tracing::debug!(peer = to, "tcp: send queue full, oldest frame dropped");
    }
    Ok(())
}

/// Capped exponential backoff with "equal jitter": each delay is between half
/// and all of the nominal one.
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    rng: StdRng,
}

impl Backoff {
    fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn delay(&mut self) -> Duration {
        let nominal = self.next;
        self.next = (nominal * 2).min(self.max);
        let half = nominal / 2;
        half + half.mul_f64(self.rng.random::<f64>())
    }

    fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// The task that owns the connection to one peer.
struct Writer {
    shared: Arc<Shared>,
    addr: String,
    queue: Arc<PeerQueue>,
    conn: Option<TcpStream>,
    backoff: Backoff,
    batch: Vec<Bytes>,
    buf: BytesMut,
}

/// What ended a wait for work.
enum Wake {
    Cancelled,
    Work,
    RemoteClosed,
    Idle,
}

impl Writer {
    fn new(shared: Arc<Shared>, addr: String, queue: Arc<PeerQueue>) -> Self {
        // Seeds differ per peer and per process, so peers do not retry in step.
        let seed = RandomState::new().hash_one(&addr);
        let backoff = Backoff::new(
            shared.config.backoff_initial,
            shared.config.backoff_max,
            seed,
        );
        Writer {
            shared,
            addr,
            queue,
            conn: None,
            backoff,
            batch: Vec::new(),
            buf: BytesMut::new(),
        }
    }

    async fn run(mut self) {
        tracing::debug!(peer = %self.addr, "tcp: writer started");
        loop {
            if self.queue.is_empty() {
                match self.wait_for_work().await {
                    Wake::Cancelled => return self.stop(),
                    Wake::Work => {}
                    Wake::RemoteClosed => {
                        inc(&self.shared.stats.outbound_remote_closed);
                        self.disconnect("closed by the remote side");
                    }
                    Wake::Idle => {
                        if self.retire(false) {
                            return;
                        }
                    }
                }
                continue;
            }
            // The peer may have closed the connection while it was idle (a
            // restart, its idle timeout): reconnect rather than write frames
            // into a dead socket.
            if self.conn.as_ref().is_some_and(closed_by_peer) {
                inc(&self.shared.stats.outbound_remote_closed);
                self.disconnect("closed by the remote side");
            }
            if self.conn.is_none() {
                if let Err(e) = self.connect().await {
                    if self.shared.tasks.cancel.is_cancelled() {
                        return self.stop();
                    }
                    inc(&self.shared.stats.outbound_connect_failed);
                    self.shared.note_connect(&self.addr, false);
                    tracing::debug!(peer = %self.addr, error = %e, "tcp: connect failed");
                    if self.retire(true) {
                        return;
                    }
                    if !self.pause().await {
                        return self.stop();
                    }
                    continue;
                }
            }
            if !self.write_batch().await {
                return self.stop();
            }
        }
    }

    /// Waits until a frame is queued, the connection is closed by the peer,
    /// the peer has been idle for `peer_idle_timeout`, or the transport closes.
    async fn wait_for_work(&mut self) -> Wake {
        let cancel = &self.shared.tasks.cancel;
        let idle = tokio::time::sleep(self.shared.config.peer_idle_timeout);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Wake::Cancelled,
            _ = self.queue.notify.notified() => Wake::Work,
            _ = remote_closed(self.conn.as_mut()) => Wake::RemoteClosed,
            _ = idle => Wake::Idle,
        }
    }

    /// Opens the connection, within `connect_timeout` (resolution included:
    /// a host name is resolved anew at every attempt).
    async fn connect(&mut self) -> io::Result<()> {
        let timeout = self.shared.config.connect_timeout;
        let attempt = tokio::time::timeout(timeout, TcpStream::connect(self.addr.as_str()));
        let stream = tokio::select! {
            biased;
            _ = self.shared.tasks.cancel.cancelled() => {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "transport closed"));
            }
            r = attempt => r.map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, format!("no connection within {timeout:?}"))
            })??,
        };
        stream.set_nodelay(true)?;
        inc(&self.shared.stats.outbound_connected);
        self.shared.note_connect(&self.addr, true);
        tracing::debug!(
            peer = %self.addr,
            remote = ?stream.peer_addr().ok(),
            "tcp: connected"
        );
        self.conn = Some(stream);
        Ok(())
    }

    /// Writes queued frames (one batch) within `write_timeout`. Returns false
    /// if the transport closed meanwhile.
    async fn write_batch(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return true;
        };
        self.queue.take_batch(&mut self.batch);
        if self.buf.capacity() > 4 * MAX_BATCH_BYTES {
            // A large frame went through before: do not keep its buffer.
            self.buf = BytesMut::new();
        } else {
            self.buf.clear();
        }
        let mut payload = 0u64;
        for frame in &self.batch {
            // `send` checked every frame against `max_frame_bytes` (<= 1 GiB).
            let len = u32::try_from(frame.len()).expect("frame size checked by send");
            self.buf.put_u32(len);
            self.buf.put_slice(frame);
            payload += frame.len() as u64;
        }
        let frames = self.batch.len() as u64;
        self.batch.clear();

        let timeout = self.shared.config.write_timeout;
        let result = tokio::select! {
            biased;
            _ = self.shared.tasks.cancel.cancelled() => return false,
            r = tokio::time::timeout(timeout, conn.write_all(&self.buf)) => r,
        };
        let stats = &self.shared.stats;
        match result {
            Ok(Ok(())) => {
                add(&stats.bytes_sent, payload);
                add(&stats.frames_sent, frames);
                self.backoff.reset();
                true
            }
            failed => {
                add(&stats.dropped_write_failed, frames);
                let reason = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no progress within {timeout:?}"),
                };
                tracing::debug!(peer = %self.addr, frames, %reason, "tcp: write failed, frames dropped");
                self.disconnect("write failed");
                self.pause().await
            }
        }
    }

    /// Sleeps for the next backoff delay. Returns false if the transport
    /// closed meanwhile.
    async fn pause(&mut self) -> bool {
        let delay = self.backoff.delay();
        tokio::select! {
            biased;
            _ = self.shared.tasks.cancel.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    fn disconnect(&mut self, why: &str) {
        if self.conn.take().is_some() {
            inc(&self.shared.stats.outbound_closed);
            tracing::debug!(peer = %self.addr, why, "tcp: connection closed");
        }
    }

    /// Removes this peer from the map so that the task can end, and returns
    /// true. If `unreachable`, only once the peer has been given nothing new
    /// for `peer_idle_timeout`, and its queued frames are dropped and counted;
    /// otherwise only if no frame is queued.
    fn retire(&mut self, unreachable: bool) -> bool {
        let mut peers = lock(&self.shared.peers);
        let dropped = {
            let mut st = lock(&self.queue.state);
            let idle = st.last_push.elapsed() >= self.shared.config.peer_idle_timeout;
            if (unreachable && !idle) || (!unreachable && !st.frames.is_empty()) {
                return false;
            }
            let dropped = st.frames.len() as u64;
            st.frames.clear();
            dropped
        };
        if peers
            .get(&self.addr)
            .is_some_and(|q| Arc::ptr_eq(q, &self.queue))
        {
            peers.remove(&self.addr);
        }
        drop(peers);
        add(&self.shared.stats.dropped_undeliverable, dropped);
        if dropped > 0 {
            tracing::debug!(peer = %self.addr, dropped, "tcp: peer unreachable, queued frames dropped");
        }
        self.disconnect("peer idle");
        self.shared.stats.peers.fetch_sub(1, SeqCst);
        tracing::debug!(peer = %self.addr, "tcp: writer ended");
        true
    }

    /// Ends the task at shutdown.
    fn stop(&mut self) {
        let dropped = {
            let mut st = lock(&self.queue.state);
            let n = st.frames.len() as u64;
            st.frames.clear();
            n
        };
        add(&self.shared.stats.dropped_undeliverable, dropped);
        self.disconnect("transport closed");
        self.shared.stats.peers.fetch_sub(1, SeqCst);
    }
}

/// Completes when the peer closes `conn` (or it fails); never if `conn` is
/// `None`. The peer never sends on this connection, so anything read is
/// discarded.
async fn remote_closed(conn: Option<&mut TcpStream>) {
    let Some(conn) = conn else {
        return std::future::pending().await;
    };
    let mut sink = [0u8; 64];
    loop {
        match conn.read(&mut sink).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Whether the peer has closed `conn` (or it failed), without waiting.
fn closed_by_peer(conn: &TcpStream) -> bool {
    let mut sink = [0u8; 64];
    loop {
        match conn.try_read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}
