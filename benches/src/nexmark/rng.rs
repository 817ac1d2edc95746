//! The `nexmark` crate's per-event RNG, state for state: rand 0.8's `SmallRng` (Xoshiro256++
//! on 64-bit targets, which weir's generator supports) seeded by `seed_from_u64(event id)`,
//! with a cheaper seeding and every call inlinable.
//!
//! The crate seeds a `SmallRng` per event, and the seeding is most of a bid's cost:
//! rand_core 0.6's default `seed_from_u64` (which `SmallRng` does not override) runs 8 PCG32
//! steps, each waiting on the one before, writes their outputs 4 bytes at a time and reads the
//! seed back 8 bytes at a time (a store-forwarding stall per word), then checks the 32 bytes
//! one by one for the all-zero seed. [`EventRng::seeded`] computes the same 8 outputs, each
//! from the seed directly, and makes the same state from them a word at a time.
//! `tests/nexmark_generator.rs` checks seeds and outputs against rand's.

use rand08::{Error, RngCore};

/// The multiplier and increment of rand_core 0.6's PCG32 step in `seed_from_u64`.
const PCG_MUL: u64 = 6_364_136_223_846_793_005;
const PCG_INC: u64 = 11_634_580_027_462_260_723;

/// `(a, c)` such that PCG32's state `k + 1` steps after `s` is `a * s + c` (wrapping), for
/// the 8 steps whose outputs fill the 32-byte seed.
const PCG_STEPS: [(u64, u64); 8] = {
    let mut steps = [(0, 0); 8];
    let (mut a, mut c) = (1u64, 0u64);
    let mut k = 0;
    while k < 8 {
        a = a.wrapping_mul(PCG_MUL);
        c = c.wrapping_mul(PCG_MUL).wrapping_add(PCG_INC);
        steps[k] = (a, c);
        k += 1;
    }
    steps
};

/// The state Xoshiro256++'s `from_seed` gives the all-zero seed (which it refuses): its own
/// `seed_from_u64(0)`, SplitMix64 from 0.
const ZERO_SEED_STATE: [u64; 4] = {
    const PHI: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut state = [0; 4];
    let mut x = 0u64;
    let mut i = 0;
    while i < 4 {
        x = x.wrapping_add(PHI);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        state[i] = z ^ (z >> 31);
        i += 1;
    }
    state
};

/// rand 0.8's `SmallRng` on a 64-bit target: the same state gives the same outputs from
/// every method, so rand's `Rng` methods (`gen_range`, `gen`, `choose`) draw from it exactly
/// as from the crate's RNG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRng {
    s: [u64; 4],
}

impl EventRng {
    /// The state of `SmallRng::seed_from_u64(seed)`. O(1): 8 independent multiplies.
    #[inline]
    pub fn seeded(seed: u64) -> Self {
        let output = |k: usize| {
            let (a, c) = PCG_STEPS[k];
            let state = a.wrapping_mul(seed).wrapping_add(c);
            let xorshifted = (((state >> 18) ^ state) >> 27) as u32;
            xorshifted.rotate_right((state >> 59) as u32)
        };
        // Seed bytes 8w..8w+8, little-endian, are outputs 2w and 2w + 1.
        Self::from_seed_words(std::array::from_fn(|w| {
            u64::from(output(2 * w)) | u64::from(output(2 * w + 1)) << 32
        }))
    }

    /// The state of `SmallRng::from_seed(seed)` where `seed`'s bytes are `words`, each
    /// little-endian: the words themselves, but for the all-zero seed.
    #[inline]
    pub fn from_seed_words(words: [u64; 4]) -> Self {
        if words == [0; 4] {
            return Self { s: ZERO_SEED_STATE };
        }
        Self { s: words }
    }
}

impl RngCore for EventRng {
    /// Xoshiro256++'s: the high half of the next `u64`.
    #[inline]
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Xoshiro256++'s step.
    #[inline]
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// rand_core 0.6's `fill_bytes_via_next`, as Xoshiro256++ fills: whole `u64`s, then the
    /// rest from one more `u64` (over 4 bytes left) or `u32`.
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let mut chunks = dest.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        match rest.len() {
            0 => {}
            n if n > 4 => rest.copy_from_slice(&self.next_u64().to_le_bytes()[..n]),
            n => rest.copy_from_slice(&self.next_u32().to_le_bytes()[..n]),
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
