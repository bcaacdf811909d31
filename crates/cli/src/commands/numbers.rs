//! Value parsers of the numeric options: a value that is not a finite number in the option's range (`NaN`,
//! `inf`, a negative weight, an FDR level of 2) is a usage error naming the option (exit code 2) before any
//! work, instead of silently turning every result into NaN or zero.

/// Parses `s` and checks it with `ok`; `expected` describes the range in the error.
fn number(s: &str, ok: impl Fn(f64) -> bool, expected: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && ok(v) => Ok(v),
        _ => Err(format!("expected {expected}, found `{s}`")),
    }
}

/// A finite number >= 0 (weights, count thresholds).
pub(crate) fn non_negative(s: &str) -> Result<f64, String> {
    number(s, |v| v >= 0.0, "a finite number >= 0")
}

/// A finite number > 0.
pub(crate) fn positive(s: &str) -> Result<f64, String> {
    number(s, |v| v > 0.0, "a finite number > 0")
}

/// A fraction in [0, 1].
pub(crate) fn fraction(s: &str) -> Result<f64, String> {
    number(s, |v| (0.0..=1.0).contains(&v), "a fraction in [0, 1]")
}

/// A false discovery rate level in (0, 1].
pub(crate) fn fdr_level(s: &str) -> Result<f64, String> {
    number(s, |v| v > 0.0 && v <= 1.0, "a q-value level in (0, 1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_non_finite_values() {
        assert_eq!(non_negative("0"), Ok(0.0));
        assert_eq!(positive(" 2.5 "), Ok(2.5));
        assert_eq!(fraction("1"), Ok(1.0));
        assert_eq!(fdr_level("0.05"), Ok(0.05));
        for bad in ["NaN", "inf", "-inf", "x", ""] {
            assert!(non_negative(bad).is_err(), "{bad}");
        }
        assert!(non_negative("-1").is_err());
        assert!(positive("0").is_err());
        assert!(fraction("1.5").is_err() && fraction("-0.1").is_err());
        assert!(fdr_level("0").is_err() && fdr_level("2").is_err());
        assert_eq!(fdr_level("2").unwrap_err(), "expected a q-value level in (0, 1], found `2`");
    }
}
