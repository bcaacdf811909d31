//! Gene programs: the shipped defaults of `tmescope_core::programs` plus user sets, resolved against a
//! dataset's genes.
//!
//! Resolution is case-insensitive on symbols; an old symbol found in the alias table (`CTGF` -> `CCN2`)
//! is matched by its current symbol and vice versa. Sets with fewer than `min_genes` genes present are
//! dropped with a warning naming the set and the genes that were missing. O(total set size).

use crate::stage::RESISTANCE;
use std::collections::HashMap;
use std::path::Path;
use tmescope_core::programs::{aliases, default_programs, read_gene_sets, GeneSet};
use tmescope_core::{Error, Result};

/// A gene program resolved against a dataset's gene table.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedProgram {
    /// Program name.
    pub name: String,
    /// Description or citation.
    pub description: String,
    /// Column indices (genes) of the program found in the dataset, in set order.
    pub genes: Vec<usize>,
    /// Symbols of the set that are absent from the dataset.
    pub missing: Vec<String>,
}

/// The programs to score: the defaults, plus or replaced by the sets of `user` (GMT or `set<TAB>gene`).
/// A user set with the name of a default replaces it; one named [`RESISTANCE`] is an input error.
pub fn load_programs(user: Option<&Path>, replace: bool) -> Result<Vec<GeneSet>> {
    let mut sets = if replace { vec![] } else { default_programs() };
    if replace && user.is_none() {
        return Err(Error::Usage("--replace-programs needs --programs FILE".into()));
    }
    if let Some(path) = user {
        for s in read_gene_sets(path)? {
            if s.name == RESISTANCE {
                return Err(Error::input(
                    path,
                    format!("set `{RESISTANCE}`"),
                    "reserved name: `score` writes the composite resistance score under it (rename the set)",
                ));
            }
            match sets.iter_mut().find(|x| x.name == s.name) {
                Some(slot) => *slot = s,
                None => sets.push(s),
            }
        }
    }
    Ok(sets)
}

/// Index from upper-case symbol (and its aliases) to gene column.
pub fn symbol_index(gene_names: &[String]) -> HashMap<String, usize> {
    let alias = aliases();
    let mut idx = HashMap::with_capacity(gene_names.len() * 2);
    for (i, g) in gene_names.iter().enumerate() {
        idx.entry(g.to_ascii_uppercase()).or_insert(i);
    }
    // An alias in the data (old symbol) answers for its current symbol, and the reverse.
    for (old, new) in &alias {
        let new_u = new.to_ascii_uppercase();
        if let Some(&i) = idx.get(old) {
            idx.entry(new_u.clone()).or_insert(i);
        }
        if let Some(&i) = idx.get(&new_u) {
            idx.entry(old.clone()).or_insert(i);
        }
    }
    idx
}

/// Resolves `sets` against `gene_names`. Returns the kept programs and one warning per dropped set.
pub fn resolve_programs(
    sets: &[GeneSet],
    gene_names: &[String],
    min_genes: usize,
) -> (Vec<ResolvedProgram>, Vec<String>) {
    let idx = symbol_index(gene_names);
    let mut kept = Vec::new();
    let mut warnings = Vec::new();
    for s in sets {
        let mut genes = Vec::new();
        let mut missing = Vec::new();
        for g in &s.genes {
            match idx.get(&g.to_ascii_uppercase()) {
                Some(&i) if !genes.contains(&i) => genes.push(i),
                Some(_) => {}
                None => missing.push(g.clone()),
            }
        }
        if genes.len() < min_genes.max(1) {
            let missing_note =
                if missing.is_empty() { String::new() } else { format!("; missing: {}", abbreviate(&missing)) };
            warnings.push(format!(
                "program `{}` dropped: {} of {} genes present (minimum {}){missing_note}",
                s.name,
                genes.len(),
                s.genes.len(),
                min_genes.max(1),
            ));
            continue;
        }
        kept.push(ResolvedProgram { name: s.name.clone(), description: s.description.clone(), genes, missing });
    }
    (kept, warnings)
}

fn abbreviate(genes: &[String]) -> String {
    if genes.len() <= 8 {
        genes.join(", ")
    } else {
        format!("{}, ... ({} more)", genes[..8].join(", "), genes.len() - 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, genes: &[&str]) -> GeneSet {
        GeneSet { name: name.into(), description: String::new(), genes: genes.iter().map(|g| g.to_string()).collect() }
    }

    #[test]
    fn aliases_and_minimum() {
        let names: Vec<String> = ["CTGF", "acta2", "TAGLN", "X"].iter().map(|s| s.to_string()).collect();
        let sets = vec![set("a", &["CCN2", "ACTA2", "TAGLN", "NOPE"]), set("b", &["NOPE1", "NOPE2"])];
        let (kept, warn) = resolve_programs(&sets, &names, 3);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].genes, vec![0, 1, 2]);
        assert_eq!(kept[0].missing, vec!["NOPE"]);
        assert_eq!(warn.len(), 1);
        assert!(warn[0].contains("`b`") && warn[0].contains("0 of 2"), "{}", warn[0]);
    }

    #[test]
    fn replace_needs_a_file() {
        assert!(load_programs(None, true).is_err());
        assert_eq!(load_programs(None, false).unwrap().len(), 19);
    }
}
