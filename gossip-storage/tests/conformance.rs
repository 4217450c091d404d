//! `MemoryStorage` against the shared `Storage` conformance suite.

use gossip_storage::MemoryStorage;

#[test]
fn memory_storage_passes_the_conformance_suite() {
    gossip_core::testing::storage::run(MemoryStorage::new);
}
