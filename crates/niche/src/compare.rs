//! Cross-sample comparison of niche and state abundance between conditions.
//!
//! Abundance is the fraction of a sample's cells in each niche, state and resistance-niche category
//! (polars group-bys and joins over the `niches.parquet` rows of every sample). For each category and
//! each level of the condition column against the reference level: the difference and log2 fold change of
//! the mean fractions, and a two-sided test on logit fractions (pseudo-count: `(n + 0.5) / (total + 1)`):
//! paired by `pair_by` (e.g. patient) when at least two pairs exist (paired t-test, or Wilcoxon
//! signed-rank), otherwise unpaired (Welch t-test, or Mann-Whitney). Benjamini-Hochberg across the
//! categories of each contrast. A level with a single sample and no pairing gets a NaN p-value and a
//! warning. O(rows) for the abundance table, O(categories x samples) for the tests.

use crate::stats;
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use tmescope_core::{Error, Result};

/// Per-cell rows of all samples: what the comparison needs from `niches.parquet`.
#[derive(Debug, Clone, Default)]
pub struct CellRows {
    /// Sample of each cell.
    pub sample: Vec<String>,
    /// `(kind, category)` columns: e.g. `("niche", niche ids as text)`, `("state", states)`.
    pub categories: Vec<(String, Vec<String>)>,
}

/// Test family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    /// Paired t / Welch t on logit fractions.
    T,
    /// Wilcoxon signed-rank / Mann-Whitney U on logit fractions.
    Wilcoxon,
}

/// One row of `differential.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    /// `niche`, `state` (niche-level), `cell_state` (cell-level) or `resistance`.
    pub kind: String,
    /// The niche id, state name or resistance category.
    pub category: String,
    /// The compared level of the condition column.
    pub level: String,
    /// The reference level.
    pub reference: String,
    /// Samples at the level.
    pub n_level: u32,
    /// Samples at the reference.
    pub n_reference: u32,
    /// Mean fraction at the level.
    pub mean_level: f64,
    /// Mean fraction at the reference.
    pub mean_reference: f64,
    /// `mean_level - mean_reference`.
    pub difference: f64,
    /// `log2((mean_level + 1e-3) / (mean_reference + 1e-3))`.
    pub log2_fc: f64,
    /// Test used: `paired_t`, `welch_t`, `wilcoxon_signed_rank`, `mann_whitney`.
    pub test: String,
    /// Number of patient pairs (0 when unpaired).
    pub n_pairs: u32,
    /// Test statistic.
    pub statistic: f64,
    /// Two-sided p-value (NaN when undefined).
    pub p: f64,
    /// BH q-value within the contrast.
    pub q: f64,
}

fn polars_err(e: PolarsError) -> Error {
    Error::Internal(format!("polars: {e}"))
}

/// Abundance per `(sample, kind, category)`: `(count, total)` of cells, zero-filled for categories seen
/// in other samples.
pub fn abundance(rows: &CellRows) -> Result<BTreeMap<(String, String, String), (f64, f64)>> {
    let mut out = BTreeMap::new();
    let samples: BTreeSet<&String> = rows.sample.iter().collect();
    for (kind, cats) in &rows.categories {
        let df = df!("sample" => rows.sample.clone(), "category" => cats.clone()).map_err(polars_err)?;
        let counts = df
            .clone()
            .lazy()
            .group_by([col("sample"), col("category")])
            .agg([len().cast(DataType::Float64).alias("n")])
            .join(
                df.lazy().group_by([col("sample")]).agg([len().cast(DataType::Float64).alias("total")]),
                [col("sample")],
                [col("sample")],
                JoinArgs::new(JoinType::Left),
            )
            .collect()
            .map_err(polars_err)?;
        let s = counts.column("sample").map_err(polars_err)?.str().map_err(polars_err)?.clone();
        let c = counts.column("category").map_err(polars_err)?.str().map_err(polars_err)?.clone();
        let n = counts.column("n").map_err(polars_err)?.f64().map_err(polars_err)?.clone();
        let t = counts.column("total").map_err(polars_err)?.f64().map_err(polars_err)?.clone();
        let mut totals = BTreeMap::new();
        let mut cats_seen = BTreeSet::new();
        for k in 0..counts.height() {
            let (Some(s), Some(c), Some(n), Some(t)) = (s.get(k), c.get(k), n.get(k), t.get(k)) else { continue };
            totals.insert(s.to_string(), t);
            cats_seen.insert(c.to_string());
            out.insert((s.to_string(), kind.clone(), c.to_string()), (n, t));
        }
        for s in &samples {
            for c in &cats_seen {
                let t = totals.get(*s).copied().unwrap_or(0.0);
                out.entry(((*s).clone(), kind.clone(), c.clone())).or_insert((0.0, t));
            }
        }
    }
    Ok(out)
}

fn logit(n: f64, total: f64) -> f64 {
    let f = (n + 0.5) / (total + 1.0);
    (f / (1.0 - f)).ln()
}

/// Compares abundance between the levels of `condition` (per sample) against `reference`.
/// `patient` (per sample) enables pairing. Returns the rows and warnings.
pub fn compare(
    abundance: &BTreeMap<(String, String, String), (f64, f64)>,
    condition: &BTreeMap<String, String>,
    patient: Option<&BTreeMap<String, String>>,
    reference: Option<&str>,
    test: TestKind,
) -> Result<(Vec<DiffRow>, Vec<String>)> {
    let samples: BTreeSet<&String> = abundance.keys().map(|k| &k.0).collect();
    if samples.len() < 2 {
        return Err(Error::Usage(format!(
            "a comparison needs at least two samples, found {}: pass the niche folders of several samples",
            samples.len()
        )));
    }
    for s in &samples {
        if !condition.contains_key(*s) {
            return Err(Error::Usage(format!("sample `{s}` has no value of the condition column")));
        }
    }
    let levels: BTreeSet<&String> = condition.iter().filter(|(s, _)| samples.contains(s)).map(|(_, c)| c).collect();
    if levels.len() < 2 {
        return Err(Error::Usage(format!(
            "the condition column has a single level ({}) across the samples: nothing to compare",
            levels.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    let reference = match reference {
        Some(r) if levels.iter().any(|l| l.as_str() == r) => r.to_string(),
        Some(r) => {
            return Err(Error::Usage(format!(
                "--reference `{r}` is not a level of the condition column (levels: {})",
                levels.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )))
        }
        None => levels.iter().next().map(|s| s.to_string()).unwrap_or_default(),
    };
    let cats: BTreeSet<(&String, &String)> = abundance.keys().map(|k| (&k.1, &k.2)).collect();
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for level in levels.iter().filter(|l| l.as_str() != reference) {
        let in_level: Vec<&String> = samples.iter().copied().filter(|s| condition[*s] == **level).collect();
        let in_ref: Vec<&String> = samples.iter().copied().filter(|s| condition[*s] == reference).collect();
        // Pairs: patients with samples at both levels (several samples per patient are averaged).
        let mut pairs: Vec<(Vec<&String>, Vec<&String>)> = Vec::new();
        if let Some(pat) = patient {
            let pats: BTreeSet<&String> = in_level.iter().filter_map(|s| pat.get(*s)).collect();
            for p in pats {
                let a: Vec<&String> = in_level.iter().copied().filter(|s| pat.get(*s) == Some(p)).collect();
                let b: Vec<&String> = in_ref.iter().copied().filter(|s| pat.get(*s) == Some(p)).collect();
                if !a.is_empty() && !b.is_empty() {
                    pairs.push((a, b));
                }
            }
        }
        let paired = pairs.len() >= 2;
        if patient.is_some() && !paired {
            warnings.push(format!("`{level}` vs `{reference}`: fewer than two patients with samples at both levels; using an unpaired test"));
        }
        if !paired && (in_level.len() < 2 || in_ref.len() < 2) {
            warnings.push(format!(
                "`{level}` vs `{reference}`: {} and {} samples; an unpaired test needs two per level, p-values are NaN",
                in_level.len(),
                in_ref.len()
            ));
        }
        let start = rows.len();
        for &(kind, cat) in &cats {
            let val =
                |s: &String| abundance.get(&(s.clone(), kind.clone(), cat.clone())).copied().unwrap_or((0.0, 0.0));
            let frac = |s: &String| {
                let (n, t) = val(s);
                if t > 0.0 {
                    n / t
                } else {
                    0.0
                }
            };
            let lg = |s: &String| {
                let (n, t) = val(s);
                logit(n, t)
            };
            let mean = |v: &[&String]| v.iter().map(|s| frac(s)).sum::<f64>() / v.len().max(1) as f64;
            let (ml, mr) = (mean(&in_level), mean(&in_ref));
            let (name, res) = if paired {
                let avg = |v: &[&String]| v.iter().map(|s| lg(s)).sum::<f64>() / v.len() as f64;
                let a: Vec<f64> = pairs.iter().map(|(a, _)| avg(a)).collect();
                let b: Vec<f64> = pairs.iter().map(|(_, b)| avg(b)).collect();
                match test {
                    TestKind::T => ("paired_t", stats::paired_t(&a, &b)),
                    TestKind::Wilcoxon => ("wilcoxon_signed_rank", stats::wilcoxon_signed_rank(&a, &b)),
                }
            } else {
                let a: Vec<f64> = in_level.iter().map(|s| lg(s)).collect();
                let b: Vec<f64> = in_ref.iter().map(|s| lg(s)).collect();
                match test {
                    TestKind::T => ("welch_t", stats::welch_t(&a, &b)),
                    TestKind::Wilcoxon => ("mann_whitney", stats::mann_whitney(&a, &b)),
                }
            };
            rows.push(DiffRow {
                kind: kind.clone(),
                category: cat.clone(),
                level: (*level).clone(),
                reference: reference.clone(),
                n_level: in_level.len() as u32,
                n_reference: in_ref.len() as u32,
                mean_level: ml,
                mean_reference: mr,
                difference: ml - mr,
                log2_fc: ((ml + 1e-3) / (mr + 1e-3)).log2(),
                test: name.to_string(),
                n_pairs: if paired { pairs.len() as u32 } else { 0 },
                statistic: res.statistic,
                p: res.p,
                q: f64::NAN,
            });
        }
        let p: Vec<f64> = rows[start..].iter().map(|r| r.p).collect();
        for (r, q) in rows[start..].iter_mut().zip(stats::bh(&p)) {
            r.q = q;
        }
    }
    Ok((rows, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Six patients, before and after therapy; niche "1" grows after, niche "2" does not change.
    fn cohort() -> (CellRows, BTreeMap<String, String>, BTreeMap<String, String>) {
        let mut rows = CellRows::default();
        let mut niche = vec![];
        let mut cond = BTreeMap::new();
        let mut pat = BTreeMap::new();
        for p in 0..6 {
            for (c, extra) in [("pre", 0usize), ("post", 60)] {
                let s = format!("p{p}_{c}");
                cond.insert(s.clone(), c.to_string());
                pat.insert(s.clone(), format!("p{p}"));
                let n1 = 50 + extra + p * 7;
                let n2 = 100 + (p * 13) % 20;
                for _ in 0..n1 {
                    rows.sample.push(s.clone());
                    niche.push("1".to_string());
                }
                for _ in 0..n2 {
                    rows.sample.push(s.clone());
                    niche.push("2".to_string());
                }
                for _ in 0..200 {
                    rows.sample.push(s.clone());
                    niche.push("0".to_string());
                }
            }
        }
        rows.categories.push(("niche".into(), niche));
        (rows, cond, pat)
    }

    #[test]
    fn planted_effect_is_found_with_the_right_sign() {
        let (rows, cond, pat) = cohort();
        let ab = abundance(&rows).unwrap();
        let (res, warn) = compare(&ab, &cond, Some(&pat), Some("pre"), TestKind::T).unwrap();
        assert!(warn.is_empty(), "{warn:?}");
        let r1 = res.iter().find(|r| r.category == "1").unwrap();
        assert_eq!(r1.test, "paired_t");
        assert!(r1.difference > 0.0 && r1.log2_fc > 0.0 && r1.q < 0.05, "{r1:?}");
        let r2 = res.iter().find(|r| r.category == "2").unwrap();
        assert!(r2.difference < 0.0, "niche 2 is diluted by the growth of niche 1: {r2:?}");
        let (unpaired, _) = compare(&ab, &cond, None, Some("pre"), TestKind::T).unwrap();
        assert_eq!(unpaired[0].test, "welch_t");
    }

    #[test]
    fn bad_cohorts_are_explained() {
        let (rows, mut cond, _) = cohort();
        let ab = abundance(&rows).unwrap();
        let one: BTreeMap<_, _> = ab.iter().filter(|(k, _)| k.0 == "p0_pre").map(|(k, v)| (k.clone(), *v)).collect();
        let e = compare(&one, &cond, None, None, TestKind::T).unwrap_err().to_string();
        assert!(e.contains("at least two samples"), "{e}");
        for (s, c) in cond.iter_mut() {
            *c = if s == "p0_post" { "post".into() } else { "pre".into() };
        }
        let (res, warn) = compare(&ab, &cond, None, Some("pre"), TestKind::T).unwrap();
        assert!(res.iter().all(|r| r.p.is_nan()));
        assert!(warn[0].contains("p-values are NaN"), "{warn:?}");
        cond.values_mut().for_each(|c| *c = "pre".into());
        assert!(compare(&ab, &cond, None, None, TestKind::T).unwrap_err().to_string().contains("single level"));
    }
}
