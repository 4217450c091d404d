//! A Bloom filter of the peers a digest covers, in place of an entry for
//! each (`Digest::filter`, `Config::filter_bits`).
//!
//! When a node answers a table that is clearly larger than its own, what
//! the exchange has to find is what it lacks; the other side would read an
//! entry per peer it holds only to leave each one out. A filter of its
//! peers states the same thing in about ten bits a peer instead of some
//! fourteen bytes, and the receiver tests each peer of its own table
//! against it in a walk it makes anyway, instead of decoding and looking
//! up each entry in its table. A peer the receiver holds at the same
//! generation and version tests as held and is not sent; a peer the sender
//! lacks, or holds at another version, is not in the filter and is sent.
//! About one in a hundred tests wrongly as held (a false positive): that
//! peer is found in a later exchange, whose salt differs.
//!
//! What is lost against entries: the receiver does not learn which peers
//! the sender holds that it lacks, nor the sender's heartbeats of them, so
//! a filter is sent only by the clearly smaller side (see
//! `Engine::filter_for`); tables of about the same size reconcile by
//! entries, both ways.
//!
//! The wire layout (field `peer_filter` of `Digest`, see
//! `proto/gossip.proto`): one byte, the number of probes `k` (1 to
//! [`MAX_PROBES`]); eight bytes, the salt (little-endian); then the bits,
//! `m = 8 * (len - 9)`, bit `i` being bit `i % 8` of byte `i / 8`. A peer
//! is the pair `(h1, h2)` of [`key`], from its id's bytes under the salt,
//! its generation and its version. With `mix` the finalizer of SplitMix64
//! after its increment (`z += 0x9e3779b97f4a7c15; z = (z ^ z >> 30) *
//! 0xbf58476d1ce4e5b9; z = (z ^ z >> 27) * 0x94d049bb133111eb; z ^ z >>
//! 31`) and all arithmetic 64-bit wrapping: `x = mix(salt)`; for each
//! eight bytes of the id's UTF-8 bytes in turn, the last chunk zero-padded
//! (none for an empty id), read little-endian as `w`, `x = mix(x ^ w)`;
//! then `x = mix(x ^ len)` (the id's length in bytes), `x = mix(x ^
//! generation)`, `x = mix(x ^ max_version)`; `h1 = x`, `h2 = mix(x) | 1`.
//! Its probes are the bits `((h1 + j * h2) * m) >> 64` for `j` in `0..k`
//! (64-bit wrapping sums and products, the last one in 128 bits).
//!
//! The id's own bytes are hashed under each salt, not its FNV-1a hash
//! (`PeerId::stable_hash`) mixed with the salt afterwards: ids whose FNV-1a
//! hashes collide are easy to find, and would test alike under every salt,
//! so a chosen id could hide another peer from a receiver in every
//! exchange; a false positive is meant to go away with the next salt.

use crate::PeerId;

/// Bytes before the bits: the probe count and the salt.
pub(crate) const HEADER: usize = 9;
/// The most probes a filter may ask for.
pub(crate) const MAX_PROBES: u8 = 16;
/// Fewest bits a peer a filter is built with; at fewer, false positives
/// pass a quarter and entries are sent instead.
pub(crate) const MIN_BITS: usize = 4;

/// The finalizer of SplitMix64 after its increment: a fixed, portable mix.
fn mix(z: u64) -> u64 {
    let z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A peer's two probe hashes under `salt`: `h1`, and `h2` (odd), of the
/// id's bytes under the salt, then the generation and the version (the
/// module's doc states the computation; sender and receiver must agree).
pub(crate) fn key(id: &PeerId, salt: u64, generation: u64, max_version: u64) -> (u64, u64) {
    let bytes = id.as_str().as_bytes();
    let mut x = mix(salt);
    // Eight bytes a word, the last one zero-padded (none for an empty id).
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        x = mix(x ^ u64::from_le_bytes(word));
    }
    let x = mix(x ^ bytes.len() as u64);
    let x = mix(x ^ generation);
    let x = mix(x ^ max_version);
    (x, mix(x) | 1)
}

/// The number of probes that suits `bits` bits a peer (`bits * ln 2`,
/// rounded, within 1 to [`MAX_PROBES`]).
fn probes_for(bits: usize) -> u8 {
    ((bits as f64 * std::f64::consts::LN_2).round() as usize).clamp(1, MAX_PROBES as usize) as u8
}

/// The probes' bit positions of `key` in `m` bits.
fn positions(key: (u64, u64), probes: u8, m: u64) -> impl Iterator<Item = usize> {
    (0..u64::from(probes)).map(move |j| {
        let h = key.0.wrapping_add(j.wrapping_mul(key.1));
        ((u128::from(h) * u128::from(m)) >> 64) as usize
    })
}

/// A filter of `keys` in `bytes` bytes of bits (at least one), with `salt`,
/// in the wire layout.
pub(crate) fn build(keys: &[(u64, u64)], bytes: usize, salt: u64) -> Vec<u8> {
    let bytes = bytes.max(1);
    let probes = probes_for(bytes * 8 / keys.len().max(1));
    let mut out = Vec::with_capacity(HEADER + bytes);
    out.push(probes);
    out.extend_from_slice(&salt.to_le_bytes());
    out.resize(HEADER + bytes, 0);
    let m = (bytes * 8) as u64;
    let bits = &mut out[HEADER..];
    for &k in keys {
        for i in positions(k, probes, m) {
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    out
}

/// Why a filter's bytes are not one (checked when a frame is decoded).
pub(crate) fn check(filter: &[u8]) -> Result<(), String> {
    if filter.len() <= HEADER {
        return Err(format!("a peer filter of {} bytes", filter.len()));
    }
    if !(1..=MAX_PROBES).contains(&filter[0]) {
        return Err(format!("a peer filter of {} probes", filter[0]));
    }
    Ok(())
}

/// A received filter, read in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filter<'a> {
    probes: u8,
    salt: u64,
    bits: &'a [u8],
}

impl<'a> Filter<'a> {
    /// The filter in `bytes`; `None` for none (empty) or one that
    /// [`check`] refuses.
    pub(crate) fn read(bytes: &'a [u8]) -> Option<Filter<'a>> {
        check(bytes).ok()?;
        let mut salt = [0u8; 8];
        salt.copy_from_slice(&bytes[1..HEADER]);
        Some(Filter {
            probes: bytes[0],
            salt: u64::from_le_bytes(salt),
            bits: &bytes[HEADER..],
        })
    }

    /// Whether the sender may hold `id` at `generation` and `max_version`
    /// (false: it certainly does not).
    pub(crate) fn holds(&self, id: &PeerId, generation: u64, max_version: u64) -> bool {
        let k = key(id, self.salt, generation, max_version);
        let m = (self.bits.len() * 8) as u64;
        positions(k, self.probes, m).all(|i| self.bits[i / 8] & (1 << (i % 8)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize, from: usize) -> Vec<PeerId> {
        (from..from + n)
            .map(|i| PeerId::from(format!("n{i:05}")))
            .collect()
    }

    fn filter_of(held: &[PeerId], bits: usize, salt: u64) -> Vec<u8> {
        let keys: Vec<_> = held.iter().map(|id| key(id, salt, 3, 7)).collect();
        build(&keys, (held.len() * bits).div_ceil(8), salt)
    }

    #[test]
    fn every_held_peer_tests_as_held() {
        let held = ids(5000, 0);
        let bytes = filter_of(&held, 10, 42);
        let f = Filter::read(&bytes).expect("a filter");
        assert!(held.iter().all(|id| f.holds(id, 3, 7)));
    }

    #[test]
    fn another_version_or_generation_tests_as_lacking_but_for_false_positives() {
        let held = ids(5000, 0);
        let bytes = filter_of(&held, 10, 42);
        let f = Filter::read(&bytes).expect("a filter");
        let wrong = |g, v| held.iter().filter(|id| f.holds(id, g, v)).count();
        // Ten bits a peer and seven probes: about 0.8% false positives.
        for (g, v) in [(3, 8), (4, 7), (3, 0)] {
            let n = wrong(g, v);
            assert!(n < 5000 / 50, "{n} of 5000 held at ({g}, {v})");
        }
        let others = ids(5000, 5000);
        let n = others.iter().filter(|id| f.holds(id, 3, 7)).count();
        assert!(n < 5000 / 50, "{n} of 5000 unknown peers test as held");
    }

    #[test]
    fn salts_make_false_positives_of_other_peers() {
        let held = ids(2000, 0);
        let others = ids(2000, 2000);
        let wrong = |salt| {
            let bytes = filter_of(&held, 6, salt);
            let f = Filter::read(&bytes).expect("a filter");
            others
                .iter()
                .filter(|id| f.holds(id, 3, 7))
                .cloned()
                .collect::<Vec<_>>()
        };
        let (a, b) = (wrong(1), wrong(2));
        assert!(
            !a.is_empty() && !b.is_empty(),
            "6 bits a peer: some false positives"
        );
        let both = a.iter().filter(|id| b.contains(id)).count();
        assert!(
            both * 4 < a.len().min(b.len()),
            "{both} false under both salts"
        );
    }

    /// Two ids with the same 64-bit FNV-1a hash (`PeerId::stable_hash`),
    /// found by Pollard's rho on the FNV-1a state of `peer-` and fifteen
    /// hex digits (a 57-bit collision: states that differ in the low seven
    /// bits only), then a last byte each that cancels the difference.
    const FNV_TWINS: (&str, &str) = ("peer-069da743be4e67b0", "peer-0c8bf5fd89aa32ap");

    #[test]
    fn ids_with_one_fnv_hash_do_not_test_alike_under_every_salt() {
        let (a, b) = (PeerId::from(FNV_TWINS.0), PeerId::from(FNV_TWINS.1));
        assert_ne!(a, b);
        assert_eq!(a.stable_hash(), b.stable_hash(), "not an FNV-1a collision");
        let fnv = |s: &str| crate::table_hash::fnv1a(s.as_bytes());
        assert_eq!(
            fnv(FNV_TWINS.0),
            fnv(FNV_TWINS.1),
            "not an FNV-1a collision"
        );
        let mut held = ids(20, 0);
        held.push(a.clone());
        // Twenty salts, ten bits a peer: b is a false positive about one
        // time in a hundred, not every time.
        let hidden = (1..=20u64)
            .filter(|&i| {
                let salt = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let bytes = filter_of(&held, 10, salt);
                let f = Filter::read(&bytes).expect("a filter");
                assert!(f.holds(&a, 3, 7));
                f.holds(&b, 3, 7)
            })
            .count();
        assert!(hidden <= 3, "{b} tests as held under {hidden} of 20 salts");
    }

    /// The key as the module's doc states it, from an implementation of
    /// that text written apart (Python): a sender and a receiver on any
    /// platform or build must compute the same probes.
    #[test]
    fn keys_are_as_documented() {
        // (id, salt, generation, max_version, (h1, h2))
        type Case = (&'static str, u64, u64, u64, (u64, u64));
        let cases: [Case; 4] = [
            ("", 0, 0, 0, (0x2130_748a_aac8_0268, 0x78ae_5a9a_6b5f_d45f)),
            (
                "n00001",
                42,
                3,
                7,
                (0x39c6_8501_0dd6_3b91, 0x570d_e984_93d2_098d),
            ),
            (
                "peer-069da743be4e67b0",
                0x0123_4567_89ab_cdef,
                1,
                2,
                (0x50dc_0001_5dce_5047, 0x70a2_6132_4201_b08b),
            ),
            (
                "é-nœud",
                7,
                0,
                9,
                (0xd778_96da_58a4_2992, 0xe6a6_f900_4b4d_d477),
            ),
        ];
        for (id, salt, generation, version, want) in cases {
            let got = key(&PeerId::from(id), salt, generation, version);
            assert_eq!(got, want, "{id:?} under {salt:#x}");
        }
    }

    #[test]
    fn malformed_filters_are_refused() {
        assert!(Filter::read(&[]).is_none());
        assert!(
            Filter::read(&[7, 0, 0, 0, 0, 0, 0, 0, 0]).is_none(),
            "no bits"
        );
        assert!(
            Filter::read(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_none(),
            "no probes"
        );
        assert!(
            Filter::read(&[17, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_none(),
            "17 probes"
        );
        let f = Filter::read(&[16, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]).expect("one byte of bits");
        assert!(f.holds(&PeerId::from("x"), 0, 0), "all bits set");
    }
}
