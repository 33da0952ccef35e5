//! The one stable hash helper: 64-bit FNV-1a, the SplitMix64 finalizer, and
//! their composition. Stable across processes, machines and versions, so
//! gateways agree on hash rings, node ids survive restarts and asset ETags
//! are computed at compile time (`const fn`).
//!
//! Invariant: the values never change (voices would move between nodes and
//! node ids would change); the tests pin them.

/// 64-bit FNV-1a of `bytes`.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The SplitMix64 finalizer: a bijective scramble of 64 bits.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a followed by the SplitMix64 finalizer: well spread, and stable.
pub const fn stable_hash(bytes: &[u8]) -> u64 {
    mix64(fnv1a64(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_pinned() {
        // Reference values of FNV-1a 64.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash(b""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(stable_hash(b"alice"), 0xc5d1_556d_6677_4a5c);
    }
}
