//! `Frame::decode`, the raw-byte checks and the keyring on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gossip_fuzz::run_decode(data));
