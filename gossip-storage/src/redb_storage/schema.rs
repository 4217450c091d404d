//! Creating, checking and loading a peer book file.

use std::collections::BTreeMap;

use bytes::Bytes;
use redb::{Database, ReadableTable, TableHandle};

use super::{
    backend, now_ms, status_of, BookEntry, RedbConfig, BOOK, KEYS, META, PEERS, SCHEMA_VERSION,
};
use crate::{MemoryStorage, PeerId, PeerRecord, Storage, Versioned};

pub(super) enum SchemaProblem {
    Schema(String),
    Corrupt(String),
}

/// Writes the schema version and the tables into a new file.
pub(super) fn init_schema(db: &Database) -> Result<(), String> {
    let w = db.begin_write().map_err(backend)?;
    {
        let mut meta = w.open_table(META).map_err(backend)?;
        meta.insert("schema", SCHEMA_VERSION).map_err(backend)?;
        w.open_table(PEERS).map_err(backend)?;
        w.open_table(KEYS).map_err(backend)?;
        w.open_table(BOOK).map_err(backend)?;
    }
    w.commit().map_err(backend)
}

/// Checks that an existing file is a peer book of this schema.
pub(super) fn check_schema(db: &Database) -> Result<(), SchemaProblem> {
    let corrupt = |e: &dyn std::fmt::Display| SchemaProblem::Corrupt(e.to_string());
    let read = db.begin_read().map_err(|e| corrupt(&e))?;
    let found = match read.open_table(META) {
        Ok(t) => t.get("schema").map_err(|e| corrupt(&e))?.map(|v| v.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(SchemaProblem::Schema(e.to_string())),
    };
    match found {
        Some(SCHEMA_VERSION) => {}
        Some(v) => return Err(SchemaProblem::Schema(format!("schema version {v}"))),
        None => {
            return Err(SchemaProblem::Schema(
                "a redb database without a peer book schema".into(),
            ))
        }
    }
    for name in [PEERS.name(), KEYS.name(), BOOK.name()] {
        let present = read
            .list_tables()
            .map_err(|e| corrupt(&e))?
            .any(|t| t.name() == name);
        if !present {
            return Err(SchemaProblem::Corrupt(format!("table {name:?} is missing")));
        }
    }
    Ok(())
}

/// Loads the mirror into `cache` and returns the book (entries past the
/// TTL are dropped from the file too). Every row must decode.
pub(super) fn load(
    db: &Database,
    cache: &MemoryStorage,
    config: &RedbConfig,
) -> Result<BTreeMap<PeerId, BookEntry>, String> {
    let r = db.begin_read().map_err(backend)?;
    let bad = |table: &str, id: &str, b: u8| format!("{table} row {id:?}: unknown status byte {b}");
    for row in r
        .open_table(PEERS)
        .map_err(backend)?
        .iter()
        .map_err(backend)?
    {
        let (k, v) = row.map_err(backend)?;
        let id = k.value();
        let (generation, status, addr) = v.value();
        let status = status_of(status).ok_or_else(|| bad("peers", id, status))?;
        cache
            .put_peer(PeerRecord {
                id: id.into(),
                generation,
                addr: addr.to_string(),
                status,
            })
            .map_err(backend)?;
    }
    for row in r
        .open_table(KEYS)
        .map_err(backend)?
        .iter()
        .map_err(backend)?
    {
        let (k, v) = row.map_err(backend)?;
        let (id, key) = k.value();
        let (version, value) = v.value();
        cache
            .put_key(
                &id.into(),
                key,
                Versioned {
                    value: Bytes::copy_from_slice(value),
                    version,
                },
            )
            .map_err(backend)?;
    }
    let mut book = BTreeMap::new();
    let oldest = now_ms().saturating_sub(config.book_ttl.as_millis() as u64);
    let mut expired = Vec::new();
    for row in r
        .open_table(BOOK)
        .map_err(backend)?
        .iter()
        .map_err(backend)?
    {
        let (k, v) = row.map_err(backend)?;
        let id = k.value();
        let (generation, status, addr, seen_ms) = v.value();
        let status = status_of(status).ok_or_else(|| bad("book", id, status))?;
        if seen_ms < oldest {
            expired.push(id.to_string());
            continue;
        }
        let record = PeerRecord {
            id: id.into(),
            generation,
            addr: addr.to_string(),
            status,
        };
        book.insert(record.id.clone(), BookEntry { record, seen_ms });
    }
    drop(r);
    if !expired.is_empty() {
        let w = db.begin_write().map_err(backend)?;
        {
            let mut t = w.open_table(BOOK).map_err(backend)?;
            for id in &expired {
                t.remove(id.as_str()).map_err(backend)?;
            }
        }
        w.commit().map_err(backend)?;
        tracing::debug!(
            expired = expired.len(),
            "peer book: entries past the TTL forgotten"
        );
    }
    Ok(book)
}
