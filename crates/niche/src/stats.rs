//! Small statistical helpers: the normal and Student t distributions, Benjamini-Hochberg q-values, Welch
//! and paired t-tests, the Wilcoxon signed-rank and Mann-Whitney tests, and the adjusted Rand index.
//!
//! The special functions follow standard numerical recipes written from their mathematical definitions:
//! `erfc` by a Chebyshev-fitted rational approximation (relative error < 1.2e-7), the regularised incomplete
//! beta function by Lentz's continued fraction. All functions are O(n) or O(n log n) in their input.

// The normal tail is shared with the spatial statistics.
pub use tmescope_spatial::stats::{erfc, normal_sf, normal_two_sided_p};

/// Benjamini-Hochberg q-values (NaN p-values stay NaN), shared with the spatial statistics.
pub use tmescope_spatial::stats::benjamini_hochberg as bh;

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation (g = 7, n = 9), accurate to about 1e-15 for x > 0.
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.5203681218851,
        -1259.1392167224028,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507343278686905,
        -0.13857109526572012,
        9.984_369_578_019_572e-6,
        1.5056327351493116e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Smallest magnitude allowed for the modified Lentz recurrences of [`beta_cf`].
const LENTZ_TINY: f64 = 1e-300;

/// One modified-Lentz step with partial numerator `aa`: updates `c` and `d` and returns the factor
/// `c * d` the continued fraction is multiplied by.
fn lentz_step(aa: f64, c: &mut f64, d: &mut f64) -> f64 {
    *d = 1.0 + aa * *d;
    if d.abs() < LENTZ_TINY {
        *d = LENTZ_TINY;
    }
    *c = 1.0 + aa / *c;
    if c.abs() < LENTZ_TINY {
        *c = LENTZ_TINY;
    }
    *d = 1.0 / *d;
    *d * *c
}

/// The continued fraction of the incomplete beta function (Abramowitz & Stegun 26.5.8), evaluated by the
/// modified Lentz method (Thompson & Barnett 1986): each iteration takes its even and its odd term.
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < LENTZ_TINY {
        d = LENTZ_TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        h *= lentz_step(m * (b - m) * x / ((qam + m2) * (a + m2)), &mut c, &mut d);
        let del = lentz_step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)), &mut c, &mut d);
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// Regularised incomplete beta function `I_x(a, b)`.
pub fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_bt = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_bt.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_bt.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Two-sided p-value of Student's t with `df` degrees of freedom.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() || !df.is_finite() || df <= 0.0 {
        return f64::NAN;
    }
    inc_beta(df / 2.0, 0.5, df / (df + t * t))
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = if x.len() > 1 { x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0) } else { f64::NAN };
    (m, v)
}

/// Result of a two-sample or paired test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    /// The test statistic (t, or the normal z of a rank test).
    pub statistic: f64,
    /// Degrees of freedom (NaN for rank tests).
    pub df: f64,
    /// Two-sided p-value (NaN when the test is undefined, e.g. fewer than two observations per group).
    pub p: f64,
}

const UNDEFINED: TestResult = TestResult { statistic: f64::NAN, df: f64::NAN, p: f64::NAN };

/// Welch's unequal-variance t-test of `a` against `b` (two-sided). Needs two observations per group.
pub fn welch_t(a: &[f64], b: &[f64]) -> TestResult {
    if a.len() < 2 || b.len() < 2 {
        return UNDEFINED;
    }
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    let se2 = sa + sb;
    if se2 <= 0.0 {
        // Both groups constant: no evidence either way unless the means differ exactly.
        let p = if ma == mb { 1.0 } else { 0.0 };
        return TestResult { statistic: if ma == mb { 0.0 } else { f64::INFINITY.copysign(ma - mb) }, df: f64::NAN, p };
    }
    let t = (ma - mb) / se2.sqrt();
    let df = se2 * se2 / (sa * sa / (a.len() as f64 - 1.0) + sb * sb / (b.len() as f64 - 1.0));
    TestResult { statistic: t, df, p: t_two_sided_p(t, df) }
}

/// Paired t-test of the differences `a[i] - b[i]` (two-sided). Needs two pairs.
pub fn paired_t(a: &[f64], b: &[f64]) -> TestResult {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    if d.len() < 2 {
        return UNDEFINED;
    }
    let (m, v) = mean_var(&d);
    let n = d.len() as f64;
    if v <= 0.0 {
        let p = if m == 0.0 { 1.0 } else { 0.0 };
        return TestResult { statistic: if m == 0.0 { 0.0 } else { f64::INFINITY.copysign(m) }, df: n - 1.0, p };
    }
    let t = m / (v / n).sqrt();
    TestResult { statistic: t, df: n - 1.0, p: t_two_sided_p(t, n - 1.0) }
}

/// Average ranks (1-based, ties share their mean rank).
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Wilcoxon signed-rank test of paired `a`, `b` (normal approximation with tie correction; zero
/// differences dropped). Undefined with fewer than two non-zero differences.
pub fn wilcoxon_signed_rank(a: &[f64], b: &[f64]) -> TestResult {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).filter(|d| *d != 0.0).collect();
    if d.len() < 2 {
        return UNDEFINED;
    }
    let n = d.len() as f64;
    let abs: Vec<f64> = d.iter().map(|v| v.abs()).collect();
    let r = average_ranks(&abs);
    let w_plus: f64 = d.iter().zip(&r).filter(|(v, _)| **v > 0.0).map(|(_, r)| r).sum();
    let mean = n * (n + 1.0) / 4.0;
    let tie = tie_term(&abs);
    let var = n * (n + 1.0) * (2.0 * n + 1.0) / 24.0 - tie / 48.0;
    if var <= 0.0 {
        return UNDEFINED;
    }
    let z = (w_plus - mean) / var.sqrt();
    TestResult { statistic: z, df: f64::NAN, p: normal_two_sided_p(z) }
}

fn tie_term(x: &[f64]) -> f64 {
    let mut s: Vec<f64> = x.to_vec();
    s.sort_by(f64::total_cmp);
    let mut t = 0.0;
    let mut i = 0;
    while i < s.len() {
        let mut j = i;
        while j + 1 < s.len() && s[j + 1] == s[i] {
            j += 1;
        }
        let c = (j - i + 1) as f64;
        t += c * c * c - c;
        i = j + 1;
    }
    t
}

/// Mann-Whitney U test of `a` against `b` (normal approximation with tie correction).
pub fn mann_whitney(a: &[f64], b: &[f64]) -> TestResult {
    if a.is_empty() || b.is_empty() || a.len() + b.len() < 3 {
        return UNDEFINED;
    }
    let all: Vec<f64> = a.iter().chain(b).copied().collect();
    let r = average_ranks(&all);
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let u = r[..a.len()].iter().sum::<f64>() - n1 * (n1 + 1.0) / 2.0;
    let n = n1 + n2;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - tie_term(&all) / (n * (n - 1.0)));
    if var <= 0.0 {
        return UNDEFINED;
    }
    let z = (u - n1 * n2 / 2.0) / var.sqrt();
    TestResult { statistic: z, df: f64::NAN, p: normal_two_sided_p(z) }
}

/// Adjusted Rand index (Hubert & Arabie 1985) between two labelings of the same items. O(n + k1 k2).
pub fn adjusted_rand_index(a: &[u32], b: &[u32]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 1.0;
    }
    let ka = a[..n].iter().max().map_or(0, |m| *m as usize + 1);
    let kb = b[..n].iter().max().map_or(0, |m| *m as usize + 1);
    let mut table = vec![0u64; ka * kb];
    for i in 0..n {
        table[a[i] as usize * kb + b[i] as usize] += 1;
    }
    let c2 = |x: u64| (x as f64) * (x as f64 - 1.0) / 2.0;
    let sum_ij: f64 = table.iter().map(|&x| c2(x)).sum();
    let sum_a: f64 = (0..ka).map(|i| c2(table[i * kb..(i + 1) * kb].iter().sum())).sum();
    let sum_b: f64 = (0..kb).map(|j| c2((0..ka).map(|i| table[i * kb + j]).sum())).sum();
    let expected = sum_a * sum_b / c2(n as u64);
    let max = (sum_a + sum_b) / 2.0;
    if (max - expected).abs() < 1e-12 {
        return 1.0;
    }
    (sum_ij - expected) / (max - expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_and_t_tails() {
        assert!((normal_two_sided_p(1.959964) - 0.05).abs() < 1e-6);
        // t = 2.228 with 10 df is the two-sided 5% point.
        assert!((t_two_sided_p(2.228139, 10.0) - 0.05).abs() < 1e-5);
        assert!((t_two_sided_p(0.0, 3.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bh_matches_hand_computation() {
        let q = bh(&[0.01, 0.04, 0.03, f64::NAN]);
        assert!((q[0] - 0.03).abs() < 1e-12);
        assert!((q[1] - 0.04).abs() < 1e-12);
        assert!((q[2] - 0.04).abs() < 1e-12);
        assert!(q[3].is_nan());
    }

    #[test]
    fn welch_and_paired() {
        // scipy.stats.ttest_ind([1,2,3,4],[3,4,5,6], equal_var=False): t = -2.1909, p = 0.0710
        let r = welch_t(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]);
        assert!((r.statistic + 2.19089).abs() < 1e-4 && (r.p - 0.07095).abs() < 1e-4, "{r:?}");
        // Differences -0.5, -0.7, -0.4, -0.9: mean -0.625, sd 0.22174, t = -5.6373 with 3 df, p = 0.01104.
        let r = paired_t(&[1.0, 2.0, 3.0, 4.0], &[1.5, 2.7, 3.4, 4.9]);
        assert!((r.statistic + 5.6373).abs() < 1e-3 && (r.p - 0.01104).abs() < 1e-4, "{r:?}");
        assert!(welch_t(&[1.0], &[2.0, 3.0]).p.is_nan());
    }

    #[test]
    fn ari_is_one_for_relabelled_partitions() {
        assert!((adjusted_rand_index(&[0, 0, 1, 1, 2], &[2, 2, 0, 0, 1]) - 1.0).abs() < 1e-12);
        assert!(adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]) < 0.0);
    }

    #[test]
    fn rank_tests_point_the_right_way() {
        let a = [5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        let b = [1.0, 2.0, 3.0, 4.0, 4.5, 2.5];
        assert!(mann_whitney(&a, &b).statistic > 0.0);
        assert!(wilcoxon_signed_rank(&a, &b).statistic > 0.0);
    }
}
