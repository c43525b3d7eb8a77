//! Xoshiro256++ (Blackman and Vigna), seeded through SplitMix64: the generator of a schedule's
//! jitter, written out here so that the crate needs no random-number crate. It is the algorithm
//! `rand_xoshiro::Xoshiro256PlusPlus` implements, with the same `seed_from_u64`, and gives the
//! same numbers (a test compares them), so seeded schedules are unchanged.

/// The generator's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Xoshiro256PlusPlus {
    s: [u64; 4],
}

impl Xoshiro256PlusPlus {
    /// The state SplitMix64 makes from `seed` (never all zero).
    pub(crate) fn seed_from_u64(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
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

    /// A uniform number in `[0, 1)`: the top 53 bits as a fraction, as `rand`'s
    /// `random::<f64>()` makes it.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::Xoshiro256PlusPlus;

    #[test]
    fn the_same_numbers_as_rand_xoshiro_for_every_seed() {
        for seed in (0..500).chain([u64::MAX, 1 << 63, 0x5eed]) {
            let mut ours = Xoshiro256PlusPlus::seed_from_u64(seed);
            let mut theirs = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
            for i in 0..64 {
                if i % 2 == 0 {
                    assert_eq!(
                        ours.next_u64(),
                        theirs.random::<u64>(),
                        "seed {seed}, draw {i}"
                    );
                } else {
                    assert_eq!(
                        ours.unit().to_bits(),
                        theirs.random::<f64>().to_bits(),
                        "seed {seed}, draw {i}"
                    );
                }
            }
        }
    }
}
