//! An engine holding state fed arbitrary bytes, replayed, forged and
//! structurally mutated genuine frames, plaintext and sealed; see
//! `gossip_fuzz` for the input format and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gossip_fuzz::run_apply(data));
