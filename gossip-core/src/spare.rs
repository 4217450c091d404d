//! Room for a frame's lists of deltas and digest entries, kept by each
//! thread from one frame to the next.
//!
//! A join's frame carries a few thousand deltas or digest entries: lists of
//! a few hundred kilobytes, decoded or built, read once, and dropped. An
//! allocator that hands freed pages back at once (mimalloc with
//! `MIMALLOC_PURGE_DELAY=0`, as the benchmark's simulator runs it) then
//! faults and zeroes them in again for the next frame. Each thread keeps
//! the room of the largest list given back to it since its kept room was
//! last taken, empty, up to [`KEPT_BYTES`], and the next frame's list
//! starts from it: a thread holds at most that much per kind, whatever the
//! number of engines it runs. (The simulator's worker threads last one
//! `Sim::run_for`, `sim/parallel.rs`; their room is reused within it.)

use std::cell::Cell;

use crate::wire::{DigestEntry, PeerDelta};

/// The most room a thread keeps for one kind of list, in bytes: a 64 KiB
/// frame holds about 3,300 of the smallest deltas (20 bytes each on the
/// wire), a list of some 370 KB in memory.
pub(crate) const KEPT_BYTES: usize = 1 << 20;

thread_local! {
    static DELTAS: Cell<Vec<PeerDelta>> = const { Cell::new(Vec::new()) };
    static ENTRIES: Cell<Vec<DigestEntry>> = const { Cell::new(Vec::new()) };
}

/// An empty list of deltas, with the room this thread kept.
pub(crate) fn deltas() -> Vec<PeerDelta> {
    DELTAS.with(Cell::take)
}

/// An empty list of digest entries, with the room this thread kept.
pub(crate) fn entries() -> Vec<DigestEntry> {
    ENTRIES.with(Cell::take)
}

/// Keeps `v`'s room (emptied) for the thread's next list of deltas.
pub(crate) fn keep_deltas(v: Vec<PeerDelta>) {
    keep(&DELTAS, v);
}

/// Keeps `v`'s room (emptied) for the thread's next list of digest entries.
pub(crate) fn keep_entries(v: Vec<DigestEntry>) {
    keep(&ENTRIES, v);
}

/// Keeps the larger room of `v` and the one held, if within [`KEPT_BYTES`].
fn keep<T: 'static>(slot: &'static std::thread::LocalKey<Cell<Vec<T>>>, mut v: Vec<T>) {
    if v.capacity() == 0 || v.capacity() * std::mem::size_of::<T>().max(1) > KEPT_BYTES {
        return;
    }
    v.clear();
    slot.with(|s| {
        let held = s.take();
        s.set(if held.capacity() >= v.capacity() {
            held
        } else {
            v
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_larger_room_is_kept_empty_and_a_huge_one_is_not() {
        let mut v = deltas();
        v.reserve(100);
        let cap = v.capacity();
        keep_deltas(v);
        let mut small = Vec::with_capacity(10);
        small.push(DigestEntry {
            id: crate::PeerId::from("spare-test"),
            generation: 1,
            max_version: 0,
            heartbeat: 1,
            gc_floor: 0,
            status: crate::PeerStatus::Live,
            status_age_ms: 0,
        });
        keep_entries(small);
        let e = entries();
        assert!(e.is_empty() && e.capacity() >= 10, "kept, empty");
        keep_deltas(Vec::with_capacity(5));
        let again = deltas();
        assert!(again.is_empty());
        assert_eq!(again.capacity(), cap, "the larger room stays");
        // The bound keeps a full default frame of the smallest deltas.
        let full = 64 * 1024 / 20 * std::mem::size_of::<PeerDelta>();
        assert!(full <= KEPT_BYTES, "{full} bytes");
        let huge = KEPT_BYTES / std::mem::size_of::<PeerDelta>() + 1;
        keep_deltas(Vec::with_capacity(huge));
        assert_eq!(deltas().capacity(), 0, "beyond the bound: freed");
    }
}
