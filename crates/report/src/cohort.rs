//! The cohort part of the report: `differential.parquet` from the compare stage.
//!
//! The comparison's exact column names are matched against short lists of accepted names (the first
//! present wins), so the report reads the compare stage's file and reasonable hand-made tables alike:
//! the thing compared (`category`, `label`, `name`, `niche`, `state`), its kind (`kind`), the contrast
//! (`contrast`, or `level` vs `reference`, or `condition_b` vs `condition_a`), the effect (`log2_fc`,
//! `log2_fold_change`, `log2fc`,
//! `effect_size`, `effect`, `estimate`), and `q` (`q`, `q_value`, `fdr`, `padj`). A missing label, effect
//! or q column is an input error naming the file and listing the accepted names.

use crate::data::{text_table, TextTable};
use crate::summary::ChangeFact;
use std::path::{Path, PathBuf};
use tmescope_core::parquet_io::Table;
use tmescope_core::{Error, Result};

/// Accepted names of the compared category column.
pub const LABEL_COLUMNS: [&str; 7] = ["category", "label", "name", "niche_or_state", "group", "niche", "state"];
/// Accepted names of the kind column (`niche` / `state`).
pub const KIND_COLUMNS: [&str; 2] = ["kind", "unit"];
/// Accepted names of the effect column; names containing `log2` are read as log2 fold changes.
pub const EFFECT_COLUMNS: [&str; 9] =
    ["log2_fc", "log2_fold_change", "log2fc", "log2_ratio", "effect_size", "effect", "estimate", "difference", "delta"];
/// Accepted names of the q-value column.
pub const Q_COLUMNS: [&str; 5] = ["q", "q_value", "qvalue", "fdr", "padj"];

/// A loaded comparison.
#[derive(Debug, Clone)]
pub struct Differential {
    /// The file.
    pub path: PathBuf,
    /// The changes, in file order.
    pub changes: Vec<ChangeFact>,
    /// The name of the effect column used.
    pub effect_column: String,
    /// The file shown as a table (all columns).
    pub table: TextTable,
}

fn pick<'a>(names: &[String], accepted: &[&'a str]) -> Option<&'a str> {
    accepted.iter().copied().find(|a| names.iter().any(|n| n == a))
}

fn require<'a>(path: &Path, names: &[String], accepted: &[&'a str], what: &str) -> Result<&'a str> {
    pick(names, accepted).ok_or_else(|| {
        Error::input(
            path,
            format!("column `{}`", accepted[0]),
            format!(
                "required {what} column is missing (accepted names: {}; columns found: {})",
                accepted.join(", "),
                names.join(", ")
            ),
        )
    })
}

/// Reads `differential.parquet`.
pub fn load_differential(path: &Path) -> Result<Differential> {
    let t = Table::read(path)?;
    let names = t.column_names();
    let label_col = require(path, &names, &LABEL_COLUMNS, "category")?;
    let effect_col = require(path, &names, &EFFECT_COLUMNS, "effect")?;
    let q_col = require(path, &names, &Q_COLUMNS, "q-value")?;
    let labels = t.utf8_opt(label_col)?;
    let effects = t.f64(effect_col)?;
    let qs = t.f64(q_col)?;
    let kinds = match pick(&names, &KIND_COLUMNS) {
        Some(k) => t.utf8_opt(k)?,
        None if label_col == "niche" => vec![Some("niche".into()); t.num_rows()],
        None if label_col == "state" => vec![Some("state".into()); t.num_rows()],
        None => vec![None; t.num_rows()],
    };
    let contrast: Vec<Option<String>> = if t.has("contrast") {
        t.utf8_opt("contrast")?
    } else if let Some((a, b)) =
        [("level", "reference"), ("condition_a", "condition_b"), ("group_a", "group_b"), ("treatment", "reference")]
            .iter()
            .find(|(a, b)| t.has(a) && t.has(b))
    {
        // `condition_b` is the one compared against `condition_a` (the reference), as in "b vs a".
        let (va, vb) = (t.utf8_opt(a)?, t.utf8_opt(b)?);
        let (first, second) = if *a == "treatment" || *a == "level" { (va, vb) } else { (vb, va) };
        first
            .into_iter()
            .zip(second)
            .map(|(x, y)| match (x, y) {
                (Some(x), Some(y)) => Some(format!("{x} vs {y}")),
                _ => None,
            })
            .collect()
    } else {
        vec![None; t.num_rows()]
    };
    let is_log2 = effect_col.contains("log2");
    let changes = (0..t.num_rows())
        .map(|i| ChangeFact {
            label: labels[i].clone().unwrap_or_default(),
            kind: kinds[i].clone().map(|k| k.to_ascii_lowercase()),
            contrast: contrast[i].clone(),
            effect: effects[i],
            effect_is_log2: is_log2,
            q: qs[i],
        })
        .collect();
    Ok(Differential {
        path: path.to_path_buf(),
        changes,
        effect_column: effect_col.to_string(),
        table: text_table(path, 200)?,
    })
}
