//! Random permutations for the permutation tests (neighbourhood enrichment, Moran's I and Geary's C,
//! ligand-receptor communication).
//!
//! A permutation test shuffles a million labels a thousand times, so the shuffle and its generator are the
//! cost of the null. [`PermutationRng`] is xoshiro256++ (Blackman & Vigna, "Scrambled linear pseudorandom
//! number generators", ACM Trans Math Softw 2021; passes BigCrush, period 2^256 - 1), a few register
//! operations per 64 bits; each permutation gets its own stream, seeded from `(seed, index)` through
//! [`crate::seed::splitmix64`], so a permutation's draws never depend on the thread that runs it.
//! [`shuffle`] is Fisher-Yates drawing the swap partners of two consecutive steps from one 64-bit number.

use crate::seed::{mix64, splitmix64, GOLDEN_GAMMA};

/// The xoshiro256++ generator of one permutation stream.
#[derive(Debug, Clone)]
pub struct PermutationRng {
    s: [u64; 4],
}

impl PermutationRng {
    /// The stream of item `index` (a permutation, a gene) under `seed`: the state is four successive
    /// SplitMix64 outputs from `seed ^ splitmix64(index)`, as the generator's authors recommend (four
    /// distinct values of a bijective mix, so never the all-zero state).
    pub fn new(seed: u64, index: u64) -> Self {
        let mut z = seed ^ splitmix64(index);
        PermutationRng {
            s: std::array::from_fn(|_| {
                z = z.wrapping_add(GOLDEN_GAMMA);
                mix64(z)
            }),
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }
}

/// Shuffles `v` in place, uniformly: Fisher-Yates, with the swap partners of two consecutive steps drawn
/// from one 64-bit number (Brackett-Rozinsky & Lemire, "Batched ranged random integer generation", Softw
/// Pract Exp 2024).
pub fn shuffle<T>(v: &mut [T], rng: &mut PermutationRng) {
    let mut i = v.len();
    while i > 1 {
        if i <= 1 << 32 {
            let [a, b] = bounded_batch(rng, [i as u64, i as u64 - 1]);
            v.swap(i - 1, a);
            v.swap(i - 2, b);
            i -= 2;
        } else {
            let [a] = bounded_batch(rng, [i as u64]);
            v.swap(i - 1, a);
            i -= 1;
        }
    }
}

/// Uniform, independent integers in `[0, bounds[k])` from one 64-bit draw (redrawn when it would bias
/// them), for bounds whose product fits in 64 bits: Lemire's multiply-and-reject method (ACM Trans Model
/// Comput Simul 2019) for the product range, its result split into one integer per bound as the digits of
/// a mixed-radix number.
#[inline]
fn bounded_batch<const K: usize>(rng: &mut PermutationRng, bounds: [u64; K]) -> [usize; K] {
    let product = bounds.iter().product::<u64>();
    loop {
        let mut rest = rng.next_u64();
        let out: [usize; K] = std::array::from_fn(|k| {
            let m = rest as u128 * bounds[k] as u128;
            rest = m as u64;
            (m >> 64) as usize
        });
        if rest >= product || rest >= product.wrapping_neg() % product {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn xoshiro256pp_reference_values() {
        // From the state (1, 2, 3, 4), worked by hand from the reference implementation:
        // rotl(1 + 4, 23) + 1, then rotl(7 + rotl(6, 45), 23) + 7.
        let mut rng = PermutationRng { s: [1, 2, 3, 4] };
        assert_eq!(rng.next_u64(), 41_943_041);
        assert_eq!(rng.next_u64(), 58_720_359);
        assert_ne!(PermutationRng::new(1, 0).next_u64(), PermutationRng::new(1, 1).next_u64());
        assert_ne!(PermutationRng::new(1, 0).next_u64(), PermutationRng::new(2, 0).next_u64());
    }

    #[test]
    fn shuffle_draws_every_order_equally_often() {
        // 4 items: 24 orders, 48,000 shuffles; each order's count is Binomial(48000, 1/24): mean 2000, sd
        // 44, so 1800..2200 is 4.5 sd. A biased split of the two draws per number would show here.
        let mut seen = HashMap::new();
        let mut rng = PermutationRng::new(5, 0);
        for _ in 0..48_000 {
            let mut v = [0u8, 1, 2, 3];
            shuffle(&mut v, &mut rng);
            *seen.entry(v).or_insert(0usize) += 1;
        }
        assert_eq!(seen.len(), 24);
        assert!(seen.values().all(|&c| (1800..2200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn shuffle_is_a_permutation_at_any_length() {
        let mut rng = PermutationRng::new(1, 2);
        for len in [0usize, 1, 2, 3, 5, 100] {
            let mut v: Vec<usize> = (0..len).collect();
            shuffle(&mut v, &mut rng);
            if len == 100 {
                assert_ne!(v, (0..len).collect::<Vec<_>>());
            }
            v.sort();
            assert_eq!(v, (0..len).collect::<Vec<_>>());
        }
    }

    #[test]
    fn every_position_is_reached_in_a_long_shuffle() {
        // Element 0 of 1,001 ends in each tenth of the positions about equally often (mixed-radix split
        // of large bounds).
        let mut rng = PermutationRng::new(9, 0);
        let mut tenths = [0usize; 10];
        for _ in 0..20_000 {
            let mut v: Vec<u16> = (0..1001).collect();
            shuffle(&mut v, &mut rng);
            let at = v.iter().position(|&x| x == 0).unwrap_or(0);
            tenths[(at * 10 / 1001).min(9)] += 1;
        }
        // Binomial(20000, ~0.1): mean ~2000, sd 42.
        assert!(tenths.iter().all(|&c| (1800..2200).contains(&c)), "{tenths:?}");
    }
}
