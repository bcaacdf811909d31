//! Seed mixing shared by every stage that draws random numbers.
//!
//! Each random stream (a permutation, a gene, a k-means restart, a simulated cell) is seeded by hashing
//! the user's seed with the stream's identifiers, so a stream's draws never depend on which thread runs it.
//! The hash is SplitMix64's finaliser (Steele, Lea & Flood, OOPSLA 2014), a bijective 64-bit mix.

/// SplitMix64's increment (the golden ratio times 2^64, odd).
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finaliser: a bijective 64-bit mix.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One SplitMix64 output for state `z`: [`mix64`] of `z + GOLDEN_GAMMA`.
#[inline]
pub fn splitmix64(z: u64) -> u64 {
    mix64(z.wrapping_add(GOLDEN_GAMMA))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // The first outputs of SplitMix64 seeded with 0 (Vigna's reference implementation).
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(GOLDEN_GAMMA), 0x6E78_9E6A_A1B9_65F4);
        assert_ne!(mix64(1), mix64(2));
    }
}
