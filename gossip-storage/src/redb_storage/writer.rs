//! The writer thread: gathers dirty peers and commits them in one transaction.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use redb::{Durability, ReadableTable};

use super::{backend, lock, now_ms, status_byte, BookEntry, Dirty, Shared, BOOK, KEYS, PEERS};
use crate::{PeerId, PeerRecord, PeerStatus, Storage};

impl Shared {
    /// The writer thread: waits for changes, commits them in batches.
    pub(super) fn run(self: Arc<Self>) {
        let mut last_refresh = std::time::Instant::now();
        loop {
            let mut p = lock(&self.pending);
            while p.peers.is_empty() && !p.shutdown {
                let wait = self
                    .config
                    .book_refresh
                    .saturating_sub(last_refresh.elapsed());
                if wait.is_zero() {
                    break;
                }
                p = self
                    .signal
                    .wait_timeout(p, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if p.peers.is_empty() && p.shutdown {
                return;
            }
            // Gather the changes that follow the first into this commit.
            let until = std::time::Instant::now() + self.config.commit_delay;
            while !p.peers.is_empty() && !p.shutdown && !p.urgent {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                p = self
                    .signal
                    .wait_timeout(p, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            p.urgent = false;
            let batch = std::mem::take(&mut p.peers);
            let seq = p.seq;
            let shutdown = p.shutdown;
            drop(p);
            let refresh = last_refresh.elapsed() >= self.config.book_refresh;
            let n = batch.len() as u64;
            match self.commit(&batch, refresh) {
                Ok(()) => {
                    if refresh {
                        last_refresh = std::time::Instant::now();
                    }
                    self.commits.fetch_add(1, Ordering::Relaxed);
                    self.peers_written.fetch_add(n, Ordering::Relaxed);
                    let mut p = lock(&self.pending);
                    p.committed = p.committed.max(seq);
                    p.failed = None;
                    drop(p);
                    self.signal.notify_all();
                }
                Err(e) => {
                    self.commit_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(path = %self.path.display(), error = %e, "peer book commit failed; retrying");
                    let mut p = lock(&self.pending);
                    for (id, d) in batch {
                        p.peers
                            .entry(id)
                            .or_default()
                            .merge(d, self.config.max_dirty_keys);
                    }
                    p.failed = Some(e);
                    drop(p);
                    self.signal.notify_all();
                    if shutdown {
                        tracing::error!(path = %self.path.display(), "peer book: pending changes lost at shutdown");
                        return;
                    }
                    std::thread::sleep(self.config.retry_delay);
                }
            }
        }
    }

    /// Writes what the cache holds now for every peer in `batch`, and the
    /// book changes that follow, in one transaction.
    fn commit(&self, batch: &HashMap<PeerId, Dirty>, refresh: bool) -> Result<(), String> {
        let mut w = self.db.begin_write().map_err(backend)?;
        w.set_durability(if self.config.fsync {
            Durability::Immediate
        } else {
            Durability::Eventual
        });
        let now = now_ms();
        let mut book = lock(&self.book).clone();
        {
            let mut peers = w.open_table(PEERS).map_err(backend)?;
            let mut keys = w.open_table(KEYS).map_err(backend)?;
            let mut book_t = w.open_table(BOOK).map_err(backend)?;
            let mut ids: Vec<&PeerId> = batch.keys().collect();
            ids.sort();
            for id in ids {
                let d = &batch[id];
                let sid = id.as_str();
                if d.record {
                    match self.cache.peer(id) {
                        Some(r) => {
                            peers
                                .insert(sid, (r.generation, status_byte(r.status), r.addr.as_str()))
                                .map_err(backend)?;
                            note_in_book(&mut book, r, now);
                        }
                        None => {
                            peers.remove(sid).map_err(backend)?;
                        }
                    }
                }
                if d.all_keys {
                    let mut stale: Vec<String> = Vec::new();
                    for row in keys.range((sid, "")..).map_err(backend)? {
                        let (k, _) = row.map_err(backend)?;
                        let (p, key) = k.value();
                        if p != sid {
                            break;
                        }
                        stale.push(key.to_string());
                    }
                    for key in &stale {
                        keys.remove((sid, key.as_str())).map_err(backend)?;
                    }
                    for (key, v) in self.cache.keys(id) {
                        keys.insert((sid, key.as_str()), (v.version, &v.value[..]))
                            .map_err(backend)?;
                    }
                } else {
                    for key in &d.keys {
                        match self.cache.get(id, key) {
                            Some(v) => keys
                                .insert((sid, key.as_str()), (v.version, &v.value[..]))
                                .map(drop),
                            None => keys.remove((sid, key.as_str())).map(drop),
                        }
                        .map_err(backend)?;
                    }
                }
            }
            if refresh {
                for id in self.cache.live_peers() {
                    if let Some(r) = self.cache.peer(&id) {
                        note_in_book(&mut book, r, now);
                    }
                }
            }
            while book.len() > self.config.max_book_entries {
                let oldest = book
                    .iter()
                    .min_by_key(|(id, e)| (e.seen_ms, (*id).clone()))
                    .map(|(id, _)| id.clone());
                match oldest {
                    Some(id) => book.remove(&id),
                    None => break,
                };
            }
            // Rewrite the book rows that differ from the file.
            let old = lock(&self.book);
            for id in old.keys().filter(|id| !book.contains_key(*id)) {
                book_t.remove(id.as_str()).map_err(backend)?;
            }
            for (id, e) in &book {
                let same = old
                    .get(id)
                    .is_some_and(|o| o.seen_ms == e.seen_ms && o.record == e.record);
                if !same {
                    let r = &e.record;
                    book_t
                        .insert(
                            id.as_str(),
                            (
                                r.generation,
                                status_byte(r.status),
                                r.addr.as_str(),
                                e.seen_ms,
                            ),
                        )
                        .map_err(backend)?;
                }
            }
        }
        w.commit().map_err(backend)?;
        *lock(&self.book) = book;
        Ok(())
    }
}

/// What a record written to the mirror means for the book: a live peer is
/// (re)stamped, a dead one keeps its stamp with the new status, a left one
/// is forgotten.
fn note_in_book(book: &mut BTreeMap<PeerId, BookEntry>, r: PeerRecord, now: u64) {
    match r.status {
        PeerStatus::Live => {
            book.insert(
                r.id.clone(),
                BookEntry {
                    record: r,
                    seen_ms: now,
                },
            );
        }
        PeerStatus::Dead => {
            if let Some(e) = book.get_mut(&r.id) {
                e.record = r;
            }
        }
        PeerStatus::Left => {
            book.remove(&r.id);
        }
    }
}
