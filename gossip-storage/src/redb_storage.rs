//! [`RedbStorage`]: a persistent [`Storage`](crate::Storage) and peer book on redb.
//!
//! Reads are served from an in-memory copy ([`MemoryStorage`]), so they cost
//! what the default storage costs. A write changes that copy and marks the
//! peer dirty; one writer thread takes every dirty peer at once, writes what
//! the copy now holds for them in one redb transaction and commits. The
//! engine never waits for the disk, and a burst of changes to one peer
//! becomes one row write. The pending set holds at most one entry per peer
//! (key names past [`RedbConfig::max_dirty_keys`] collapse into "rewrite all
//! keys"), so it is bounded by the number of peers, which the engine bounds
//! by `Config::max_peers`.
//!
//! Every commit is atomic: a `kill -9` or a power cut (with
//! [`RedbConfig::fsync`]) leaves the file at the last commit, which redb
//! finds by checksum when it opens.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, TableDefinition};

use crate::{MemoryStorage, PeerId, PeerRecord, PeerStatus, Storage, StorageError, Versioned};
use schema::{check_schema, init_schema, load, SchemaProblem};

/// The database file inside the data directory.
pub const DB_FILE: &str = "peers.redb";

/// The layout this code writes; a file with another one is refused.
pub const SCHEMA_VERSION: u64 = 1;

/// `"schema"` → [`SCHEMA_VERSION`].
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The mirror's records: id → (generation, status, address).
const PEERS: TableDefinition<&str, (u64, u8, &str)> = TableDefinition::new("peers");
/// The mirror's live keys: (id, key) → (version, value).
const KEYS: TableDefinition<(&str, &str), (u64, &[u8])> = TableDefinition::new("keys");
/// The peer book: id → (generation, status, address, last seen live, ms since the epoch).
const BOOK: TableDefinition<&str, (u64, u8, &str, u64)> = TableDefinition::new("book");

/// Settings of a [`RedbStorage`]. Every bound it keeps is one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedbConfig {
    /// Create the directory and the database when they do not exist
    /// (default `true`). With `false`, a missing one is
    /// [`OpenError::Missing`]: for a node that must not start with an empty
    /// book by mistake (a volume that was not mounted).
    pub create: bool,
    /// Make every commit durable against power loss with an fsync (default
    /// `true`). Without it a commit reaches the OS at once and survives the
    /// process being killed, but not the machine losing power.
    pub fsync: bool,
    /// Run redb's full integrity check when opening (default `true`; it
    /// reads the whole file, which for a peer book is small).
    pub check_on_open: bool,
    /// Most peers the book remembers (default 10,000); past it, those seen
    /// live longest ago are forgotten.
    pub max_book_entries: usize,
    /// A book entry not seen live for this long is forgotten when the
    /// storage opens (default 72 hours). A peer seen within it is contacted
    /// at start even if it is down now.
    pub book_ttl: Duration,
    /// How often the writer stamps the peers that are live now as seen
    /// (default 60 s): the precision of `book_ttl`.
    pub book_refresh: Duration,
    /// Changed key names remembered per dirty peer before the writer
    /// rewrites all its keys instead (default 64).
    pub max_dirty_keys: usize,
    /// Pause before retrying a commit that failed (default 500 ms).
    pub retry_delay: Duration,
    /// How long the writer waits after the first change before committing,
    /// gathering what follows into the same transaction (default 100 ms;
    /// zero commits as soon as the writer is free). The changes of the last
    /// `commit_delay` are what a crash can lose; [`RedbStorage::flush`]
    /// does not wait for it.
    pub commit_delay: Duration,
}

impl Default for RedbConfig {
    fn default() -> Self {
        RedbConfig {
            create: true,
            fsync: true,
            check_on_open: true,
            max_book_entries: 10_000,
            book_ttl: Duration::from_secs(72 * 3600),
            book_refresh: Duration::from_secs(60),
            max_dirty_keys: 64,
            retry_delay: Duration::from_millis(500),
            commit_delay: Duration::from_millis(100),
        }
    }
}

impl RedbConfig {
    /// Checks that every bound is usable.
    pub fn validate(&self) -> Result<(), OpenError> {
        let bad = |what: &'static str| Err(OpenError::Config(what));
        if self.max_book_entries == 0 {
            return bad("max_book_entries must be at least 1");
        }
        if self.book_ttl.is_zero() {
            return bad("book_ttl must be positive");
        }
        if self.book_refresh.is_zero() {
            return bad("book_refresh must be positive");
        }
        if self.max_dirty_keys == 0 {
            return bad("max_dirty_keys must be at least 1");
        }
        if self.retry_delay.is_zero() {
            return bad("retry_delay must be positive");
        }
        Ok(())
    }
}

/// Why a [`RedbStorage`] could not be opened. Nothing was changed on disk,
/// except that a directory or an empty database was created when
/// [`RedbConfig::create`] allowed it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A [`RedbConfig`] bound is unusable.
    #[error("invalid storage config: {0}")]
    Config(&'static str),
    /// The directory or the database file does not exist and `create` is off.
    #[error("{path}: no peer book here (and creating one is off)")]
    Missing {
        /// What is missing.
        path: PathBuf,
    },
    /// The data directory path names something that is not a directory.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Another process (or another storage in this one) has the database open.
    #[error("{path}: the peer book is open in another process")]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// The file is not a redb database, is damaged beyond redb's recovery,
    /// or holds a record this code cannot read.
    #[error("{path}: the peer book is corrupt: {reason}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// The file is a redb database with another layout (another schema
    /// version, or not a peer book).
    #[error("{path}: not a peer book of schema {SCHEMA_VERSION}: {reason}")]
    Schema {
        /// The database file.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// Reading or creating the file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Counters of the writer thread; see [`RedbStorage::writer_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Peers written (one peer changed many times between two commits counts once).
    pub peers_written: u64,
    /// Commits that failed (their changes stay pending and are retried).
    pub commit_errors: u64,
    /// Gauge: peers with changes not yet committed.
    pub pending_peers: u64,
    /// Gauge: entries in the peer book.
    pub book_entries: u64,
}

/// A persistent [`Storage`]: the mirror of the engine's table and a peer
/// book, in one redb file (`peers.redb`) in a data directory.
///
/// The mirror is what [`Storage`] reads and writes; a node wipes it at start
/// and rebuilds it from gossip. The **book** is separate and outlives
/// restarts: every peer this store has seen live, with its address and when
/// it was last seen live; a peer that left is dropped from it, and so is one
/// not seen for [`RedbConfig::book_ttl`]. [`Storage::book`] returns it, and
/// the node contacts its addresses at start alongside its seeds, so a node
/// restarted with only its data directory rejoins.
///
/// Cheap to clone; clones share the store. When the last clone is dropped
/// the writer commits what is pending and stops.
///
/// ```
/// use gossip_storage::{PeerRecord, PeerStatus, RedbStorage, Storage};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = RedbStorage::open(dir.path())?;
/// store.put_peer(PeerRecord {
///     id: "a".into(),
///     generation: 1,
///     addr: "10.0.0.1:7946".into(),
///     status: PeerStatus::Live,
/// })?;
/// store.flush()?;
/// drop(store);
///
/// let again = RedbStorage::open(dir.path())?;
/// assert_eq!(again.book()[0].addr, "10.0.0.1:7946");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RedbStorage {
    handle: Arc<Handle>,
}

/// Owned by the clones: stops the writer when the last one goes.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// Shared by the handles and the writer thread.
#[derive(Debug)]
struct Shared {
    db: Database,
    path: PathBuf,
    config: RedbConfig,
    cache: MemoryStorage,
    pending: Mutex<Pending>,
    /// Signals the writer (work or shutdown) and flushers (a commit).
    signal: Condvar,
    book: Mutex<BTreeMap<PeerId, BookEntry>>,
    commits: AtomicU64,
    peers_written: AtomicU64,
    commit_errors: AtomicU64,
}

#[derive(Debug, Default)]
struct Pending {
    peers: HashMap<PeerId, Dirty>,
    /// Bumped by every write; `committed` catches up with it.
    seq: u64,
    committed: u64,
    /// A flush waits: commit without the `commit_delay`.
    urgent: bool,
    /// The last commit failed with this; cleared by the next success.
    failed: Option<String>,
    shutdown: bool,
}

/// What changed for one peer since the last commit.
#[derive(Debug, Default)]
struct Dirty {
    record: bool,
    all_keys: bool,
    keys: BTreeSet<String>,
}

impl Dirty {
    fn merge(&mut self, other: Dirty, max_keys: usize) {
        self.record |= other.record;
        self.all_keys |= other.all_keys;
        self.keys.extend(other.keys);
        if self.all_keys || self.keys.len() > max_keys {
            self.all_keys = true;
            self.keys.clear();
        }
    }
}

#[derive(Debug, Clone)]
struct BookEntry {
    record: PeerRecord,
    seen_ms: u64,
}

fn status_byte(s: PeerStatus) -> u8 {
    match s {
        PeerStatus::Live => 0,
        PeerStatus::Dead => 1,
        PeerStatus::Left => 2,
    }
}

fn status_of(b: u8) -> Option<PeerStatus> {
    match b {
        0 => Some(PeerStatus::Live),
        1 => Some(PeerStatus::Dead),
        2 => Some(PeerStatus::Left),
        _ => None,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn backend(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl RedbStorage {
    /// Opens (or creates) the peer book in `dir` with the default [`RedbConfig`].
    pub fn open(dir: impl AsRef<Path>) -> Result<RedbStorage, OpenError> {
        Self::open_with(dir, RedbConfig::default())
    }

    /// Opens (or, if `config.create`, creates) the peer book in directory
    /// `dir`: checks the file (redb's recovery after a crash, then its
    /// integrity check if `check_on_open`), its schema and every row, loads
    /// it, forgets book entries older than `book_ttl`, and starts the writer.
    pub fn open_with(dir: impl AsRef<Path>, config: RedbConfig) -> Result<RedbStorage, OpenError> {
        config.validate()?;
        let dir = dir.as_ref();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        match std::fs::metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return Err(OpenError::NotADirectory {
                    path: dir.to_path_buf(),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !config.create {
                    return Err(OpenError::Missing {
                        path: dir.to_path_buf(),
                    });
                }
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
            Err(e) => return Err(io(dir)(e)),
        }
        let path = dir.join(DB_FILE);
        let map_db = |path: &Path, e: redb::DatabaseError| -> OpenError {
            let path = path.to_path_buf();
            match e {
                redb::DatabaseError::DatabaseAlreadyOpen => OpenError::Locked { path },
                redb::DatabaseError::Storage(redb::StorageError::Io(source))
                    if matches!(
                        source.kind(),
                        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    OpenError::Corrupt {
                        path,
                        reason: format!("not a redb database ({source})"),
                    }
                }
                redb::DatabaseError::Storage(redb::StorageError::Io(source)) => {
                    OpenError::Io { path, source }
                }
                redb::DatabaseError::UpgradeRequired(v) => OpenError::Schema {
                    path,
                    reason: format!("redb file format {v}"),
                },
                other => OpenError::Corrupt {
                    path,
                    reason: other.to_string(),
                },
            }
        };
        if !path.exists() {
            if !config.create {
                return Err(OpenError::Missing { path });
            }
            // Created under another name and renamed when whole, so a crash
            // while creating leaves no half-made book behind.
            let fresh = dir.join(format!("{DB_FILE}.new"));
            let _ = std::fs::remove_file(&fresh);
            let db = Database::create(&fresh).map_err(|e| map_db(&fresh, e))?;
            init_schema(&db).map_err(|reason| OpenError::Corrupt {
                path: fresh.clone(),
                reason,
            })?;
            drop(db);
            std::fs::rename(&fresh, &path).map_err(io(&path))?;
        }
        if std::fs::metadata(&path).map_err(io(&path))?.len() == 0 {
            // redb would take an empty file for a new database; a peer book
            // never is one (see above), so it was truncated.
            return Err(OpenError::Corrupt {
                path,
                reason: "the file is empty".into(),
            });
        }
        let mut db = Database::open(&path).map_err(|e| map_db(&path, e))?;
        if config.check_on_open {
            match db.check_integrity() {
                Ok(true) => {}
                Ok(false) => tracing::warn!(path = %path.display(), "peer book repaired on open"),
                Err(e) => return Err(map_db(&path, e)),
            }
        }
        let corrupt = |reason: String| OpenError::Corrupt {
            path: path.clone(),
            reason,
        };
        let schema = |reason: String| OpenError::Schema {
            path: path.clone(),
            reason,
        };
        check_schema(&db).map_err(|e| match e {
            SchemaProblem::Schema(r) => schema(r),
            SchemaProblem::Corrupt(r) => corrupt(r),
        })?;
        let cache = MemoryStorage::new();
        let book = load(&db, &cache, &config).map_err(corrupt)?;
        let shared = Arc::new(Shared {
            db,
            path: path.clone(),
            config,
            cache,
            pending: Mutex::new(Pending::default()),
            signal: Condvar::new(),
            book: Mutex::new(book),
            commits: AtomicU64::new(0),
            peers_written: AtomicU64::new(0),
            commit_errors: AtomicU64::new(0),
        });
        let worker = shared.clone();
        let writer = std::thread::Builder::new()
            .name("gossip-redb-writer".into())
            .spawn(move || worker.run())
            .map_err(io(&path))?;
        Ok(RedbStorage {
            handle: Arc::new(Handle {
                shared,
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.handle.shared.path
    }

    /// The configuration in force.
    pub fn config(&self) -> &RedbConfig {
        &self.handle.shared.config
    }

    /// Waits until every write made before the call is committed. Errors
    /// with the commit's failure if the writer could not commit (it keeps
    /// the changes and retries).
    pub fn flush(&self) -> Result<(), StorageError> {
        let s = &self.handle.shared;
        let mut p = lock(&s.pending);
        let target = p.seq;
        if p.committed < target {
            p.urgent = true;
            s.signal.notify_all();
        }
        while p.committed < target {
            if let Some(e) = &p.failed {
                return Err(StorageError::Backend(e.clone()));
            }
            p = s.signal.wait(p).unwrap_or_else(|e| e.into_inner());
        }
        Ok(())
    }

    /// Why the last commit failed, while the writer has not committed
    /// since (its changes stay pending and are retried).
    pub fn last_error(&self) -> Option<String> {
        lock(&self.handle.shared.pending).failed.clone()
    }

    /// The writer's counters.
    pub fn writer_stats(&self) -> WriterStats {
        let s = &self.handle.shared;
        let pending = lock(&s.pending).peers.len() as u64;
        WriterStats {
            commits: s.commits.load(Ordering::Relaxed),
            peers_written: s.peers_written.load(Ordering::Relaxed),
            commit_errors: s.commit_errors.load(Ordering::Relaxed),
            pending_peers: pending,
            book_entries: lock(&s.book).len() as u64,
        }
    }

    /// Records the change (already in the cache) for the writer. Fails,
    /// with the change still pending, while the last commit has failed.
    fn mark(&self, id: &PeerId, dirty: Dirty) -> Result<(), StorageError> {
        let s = &self.handle.shared;
        let mut p = lock(&s.pending);
        p.seq += 1;
        // The writer needs waking only when work appears: while it gathers
        // a batch it waits out `commit_delay` anyway (a wake per write cost
        // a context switch each).
        let wake = p.peers.is_empty();
        p.peers
            .entry(id.clone())
            .or_default()
            .merge(dirty, s.config.max_dirty_keys);
        let failed = p.failed.clone();
        drop(p);
        if wake {
            s.signal.notify_all();
        }
        match failed {
            Some(e) => Err(StorageError::Backend(format!(
                "peer book commit failing, change kept pending: {e}"
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.shared.pending).shutdown = true;
        self.shared.signal.notify_all();
        if let Some(w) = lock(&self.writer).take() {
            let _ = w.join();
        }
    }
}

impl Storage for RedbStorage {
    fn put_peer(&self, record: PeerRecord) -> Result<(), StorageError> {
        let id = record.id.clone();
        self.handle.shared.cache.put_peer(record)?;
        self.mark(
            &id,
            Dirty {
                record: true,
                ..Dirty::default()
            },
        )
    }

    fn remove_peer(&self, id: &PeerId) -> Result<(), StorageError> {
        self.handle.shared.cache.remove_peer(id)?;
        self.mark(
            id,
            Dirty {
                record: true,
                all_keys: true,
                ..Dirty::default()
            },
        )
    }

    fn peer(&self, id: &PeerId) -> Option<PeerRecord> {
        self.handle.shared.cache.peer(id)
    }

    fn peers(&self) -> Vec<PeerRecord> {
        self.handle.shared.cache.peers()
    }

    fn put_key(&self, peer: &PeerId, key: &str, value: Versioned) -> Result<(), StorageError> {
        self.handle.shared.cache.put_key(peer, key, value)?;
        self.mark(peer, Dirty::key(key))
    }

    fn remove_key(&self, peer: &PeerId, key: &str) -> Result<(), StorageError> {
        self.handle.shared.cache.remove_key(peer, key)?;
        self.mark(peer, Dirty::key(key))
    }

    fn clear_keys(&self, peer: &PeerId) -> Result<(), StorageError> {
        self.handle.shared.cache.clear_keys(peer)?;
        self.mark(
            peer,
            Dirty {
                all_keys: true,
                ..Dirty::default()
            },
        )
    }

    fn get(&self, peer: &PeerId, key: &str) -> Option<Versioned> {
        self.handle.shared.cache.get(peer, key)
    }

    fn keys(&self, peer: &PeerId) -> Vec<(String, Versioned)> {
        self.handle.shared.cache.keys(peer)
    }

    fn with_status(&self, status: PeerStatus) -> Vec<PeerId> {
        self.handle.shared.cache.with_status(status)
    }

    /// The book as the writer last committed it, sorted by id.
    fn book(&self) -> Vec<PeerRecord> {
        lock(&self.handle.shared.book)
            .values()
            .map(|e| e.record.clone())
            .collect()
    }
}

impl Dirty {
    fn key(key: &str) -> Dirty {
        let mut d = Dirty::default();
        d.keys.insert(key.to_owned());
        d
    }
}

mod schema;
mod writer;

#[cfg(test)]
mod tests;
