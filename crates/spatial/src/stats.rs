//! Small numeric helpers shared by the statistics: normal tail probabilities and Benjamini-Hochberg.

use rayon::prelude::*;

/// The standard normal upper tail `P(Z > z)`, via the complementary error function (W. J. Cody's
/// rational approximations as in Numerical Recipes' `erfc`, relative error below 1.2e-7).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Two-sided normal p-value of a z-score; NaN stays NaN.
pub fn normal_two_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    (2.0 * normal_sf(z.abs())).min(1.0)
}

/// The complementary error function.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// One-sided p-value in the direction of the sign of `z` (squidpy's `pval_norm`): `P(Z > z)` for z > 0,
/// `P(Z < z)` otherwise. NaN stays NaN.
pub fn one_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        f64::NAN
    } else if z > 0.0 {
        normal_sf(z)
    } else {
        normal_sf(-z)
    }
}

/// An integer that orders like `x.total_cmp(y)`: negative values have their magnitude bits flipped.
fn total_order_key(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    b ^ (((b >> 63) as u64) >> 1) as i64
}

/// Benjamini-Hochberg adjusted p-values (q-values); NaN p-values are ignored and stay NaN.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    // Sorted as (key, index) pairs, the key ordering like `f64::total_cmp`: a contiguous sort, without
    // looking up `p` through the indices at every comparison. The order is total (ties by index), so the
    // parallel unstable sort gives one result for any thread count.
    let mut idx: Vec<(i64, usize)> =
        p.iter().enumerate().filter(|(_, x)| !x.is_nan()).map(|(i, &x)| (total_order_key(x), i)).collect();
    let m = idx.len() as f64;
    idx.par_sort_unstable();
    let mut q = vec![f64::NAN; p.len()];
    let mut running = 1.0f64;
    for (rank, &(_, i)) in idx.iter().enumerate().rev() {
        running = running.min(p[i] * m / (rank as f64 + 1.0));
        q[i] = running.min(1.0);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_values() {
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_sf(1.959964) - 0.025).abs() < 1e-6);
        assert!((normal_sf(-1.0) - 0.841344746).abs() < 1e-6);
        assert!((one_sided_p(-1.0) - 0.158655254).abs() < 1e-6);
    }

    #[test]
    fn bh_matches_r_p_adjust() {
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.2), "BH") = 0.04 0.0533 0.0533 0.2
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.2]);
        let want = [0.04, 0.0533333333, 0.0533333333, 0.2];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-9, "{q:?}");
        }
        assert!(benjamini_hochberg(&[f64::NAN, 0.5])[0].is_nan());
    }

    #[test]
    fn total_order_key_orders_like_total_cmp() {
        let v = [f64::NEG_INFINITY, -2.5, -1e-300, -0.0, 0.0, 1e-300, 0.04, 1.0, f64::INFINITY];
        for a in v {
            for b in v {
                assert_eq!(total_order_key(a).cmp(&total_order_key(b)), a.total_cmp(&b), "{a} {b}");
            }
        }
    }
}
