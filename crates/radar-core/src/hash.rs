//! Stable hashes for entity keys and category values: the same on every
//! platform and version, because they are stored in feature-state
//! checkpoints. Entity keys go through [`EntityHasher`], keyed with a
//! per-deployment secret, so that nobody who can send events can craft a
//! key that lands on another entity's state.

/// Eight bytes at a time: each little-endian word is mixed in with a
/// multiply-rotate step, the length is folded in, and a SplitMix64
/// finaliser makes every output bit depend on every input bit. Fast on the
/// short keys events carry (ids, categories); not meant to resist keys
/// crafted to collide.
#[inline]
pub fn hash64(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0x243F_6A88_85A3_08D3 ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SipHash-2-4 with a 128-bit secret: a keyed hash made for exactly
/// this (hash-flooding resistance). Without the secret, finding two
/// entity keys with the same hash takes about 2^64 tries of events.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EntityHasher {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for EntityHasher {
    // The secret is not printed: only which one it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EntityHasher({:#018x})", self.id())
    }
}

impl Default for EntityHasher {
    /// A public key: only for engines whose hashes never meet untrusted
    /// keys or are never kept (tests, benchmarks, offline feature runs;
    /// features do not depend on the hash, only where state is kept).
    fn default() -> Self {
        EntityHasher { k0: 0, k1: 0 }
    }
}

impl EntityHasher {
    pub fn new(secret: [u8; 16]) -> EntityHasher {
        let (a, b) = secret.split_at(8);
        let word = |s: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(s);
            u64::from_le_bytes(w)
        };
        EntityHasher {
            k0: word(a),
            k1: word(b),
        }
    }

    /// Which secret this is, safe to store and show: checkpoints carry it
    /// so that state kept under one secret is never read under another.
    pub fn id(&self) -> u64 {
        self.hash(b"radar entity secret id")
    }

    #[inline]
    pub fn hash(&self, bytes: &[u8]) -> u64 {
        let mut v = [
            self.k0 ^ 0x736f_6d65_7073_6575,
            self.k1 ^ 0x646f_7261_6e64_6f6d,
            self.k0 ^ 0x6c79_6765_6e65_7261,
            self.k1 ^ 0x7465_6462_7974_6573,
        ];
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            compress(&mut v, u64::from_le_bytes(w), 2);
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        let last = u64::from_le_bytes(w) | ((bytes.len() as u64) << 56);
        compress(&mut v, last, 2);
        v[2] ^= 0xff;
        for _ in 0..4 {
            sip_round(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

#[inline(always)]
fn compress(v: &mut [u64; 4], m: u64, rounds: usize) {
    v[3] ^= m;
    for _ in 0..rounds {
        sip_round(v);
    }
    v[0] ^= m;
}

#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED_EMPTY: u64 = 16_852_473_371_444_490_038;

    #[test]
    fn is_stable_and_spreads() {
        // Pinned: checkpoints depend on these values never changing.
        assert_eq!(hash64(b""), PINNED_EMPTY);
        // Lengths are folded in: a zero byte is not the same as nothing.
        assert_ne!(hash64(b"\0"), hash64(b""));
        assert_ne!(hash64(b"abcdefgh"), hash64(b"abcdefgh\0"));
        assert_eq!(hash64(b"card-000001"), hash64(b"card-000001"));
        let a = hash64(b"card-000001");
        let b = hash64(b"card-000002");
        assert_ne!(a, b);
        assert!((a ^ b).count_ones() > 16);
        let n = 100_000u32;
        let mut buckets = vec![0u32; 1024];
        for i in 0..n {
            buckets[(hash64(format!("c{i}").as_bytes()) & 1023) as usize] += 1;
        }
        let max = *buckets.iter().max().unwrap();
        assert!(max < 160, "worst bucket {max} (mean ~98)");
    }

    #[test]
    fn entity_hasher_is_siphash_2_4() {
        // The reference vectors of the SipHash paper: key 00..0f, messages
        // 00..(n-1) for n = 0 and n = 15.
        let secret: [u8; 16] = std::array::from_fn(|i| i as u8);
        let h = EntityHasher::new(secret);
        assert_eq!(h.hash(b""), 0x726f_db47_dd0e_0e31);
        let m: Vec<u8> = (0..15).collect();
        assert_eq!(h.hash(&m), 0xa129_ca61_49be_45e5);
        let m: Vec<u8> = (0..8).collect();
        assert_eq!(h.hash(&m), 0x93f5_f579_9a93_2462);
    }

    #[test]
    fn another_secret_hashes_every_key_elsewhere() {
        let a = EntityHasher::new([1; 16]);
        let b = EntityHasher::new([2; 16]);
        assert_ne!(a.id(), b.id());
        assert_ne!(a.hash(b"card-1"), b.hash(b"card-1"));
        assert!(!format!("{a:?}").contains("0101"));
    }
}
