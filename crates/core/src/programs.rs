//! Gene sets: the default TME programs, cell-type markers and ligand-receptor pairs shipped with the
//! tool (`crates/core/data/`, version [`PROGRAMS_VERSION`]), and parsers for user files (GMT or a
//! two-column TSV `set<TAB>gene`).

use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// Version of the shipped gene-set files.
pub const PROGRAMS_VERSION: &str = "tmescope-programs-1";

/// The default programs (GMT: name, citation, genes).
pub const DEFAULT_PROGRAMS_GMT: &str = include_str!("../data/programs.gmt");
/// Cell-type marker sets (GMT).
pub const DEFAULT_MARKERS_GMT: &str = include_str!("../data/markers.gmt");
/// TME ligand-receptor pairs (TSV with header `ligand receptor`, `#` comments).
pub const DEFAULT_LR_PAIRS_TSV: &str = include_str!("../data/lr_pairs.tsv");
/// Symbol aliases (TSV `alias symbol`, `#` comments).
pub const ALIASES_TSV: &str = include_str!("../data/aliases.tsv");

/// A named gene set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneSet {
    /// Set name.
    pub name: String,
    /// Description or citation.
    pub description: String,
    /// Gene symbols, in file order, without duplicates.
    pub genes: Vec<String>,
}

/// Parses GMT text (`name<TAB>description<TAB>gene...`). `source` names the file in errors.
pub fn parse_gmt(text: &str, source: &Path) -> Result<Vec<GeneSet>> {
    let mut sets: Vec<GeneSet> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 3 {
            return Err(Error::input(
                source,
                format!("line {}", i + 1),
                "expected `name<TAB>description<TAB>gene...` (GMT)",
            ));
        }
        let mut genes: Vec<String> = Vec::new();
        for g in f[2..].iter().map(|g| g.trim()).filter(|g| !g.is_empty()) {
            if !genes.iter().any(|x| x == g) {
                genes.push(g.to_string());
            }
        }
        if genes.is_empty() {
            return Err(Error::input(
                source,
                format!("line {}", i + 1),
                format!("gene set `{}` lists no genes: expected `name<TAB>description<TAB>gene...`", f[0]),
            ));
        }
        if sets.iter().any(|s| s.name == f[0]) {
            return Err(Error::input(source, format!("line {}", i + 1), format!("gene set `{}` defined twice", f[0])));
        }
        sets.push(GeneSet { name: f[0].to_string(), description: f[1].to_string(), genes });
    }
    Ok(sets)
}

/// Parses a two-column TSV (`set<TAB>gene`, optional header `set gene` or `program gene`).
pub fn parse_set_tsv(text: &str, source: &Path) -> Result<Vec<GeneSet>> {
    let mut order: Vec<String> = Vec::new();
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').map(str::trim).collect();
        if f.len() != 2 {
            return Err(Error::input(
                source,
                format!("line {}", i + 1),
                "expected two tab-separated columns `set<TAB>gene`",
            ));
        }
        if i == 0 && matches!(f[0].to_ascii_lowercase().as_str(), "set" | "program" | "name" | "gene_set") {
            continue;
        }
        if f[1].is_empty() || f[1].contains(char::is_whitespace) {
            return Err(Error::input(
                source,
                format!("line {}", i + 1),
                format!(
                    "`{}` is not a gene symbol: expected `set<TAB>gene` (or GMT `name<TAB>description<TAB>gene...`)",
                    f[1]
                ),
            ));
        }
        let e = map.entry(f[0].to_string()).or_insert_with(|| {
            order.push(f[0].to_string());
            Vec::new()
        });
        if !e.iter().any(|g| g == f[1]) {
            e.push(f[1].to_string());
        }
    }
    Ok(order
        .into_iter()
        .map(|n| GeneSet {
            genes: map.remove(&n).unwrap_or_default(),
            name: n,
            description: source.display().to_string(),
        })
        .collect())
}

/// Reads a user gene-set file: GMT when any line has three or more tab-separated fields, else TSV.
pub fn read_gene_sets(path: &Path) -> Result<Vec<GeneSet>> {
    let text = crate::text::read_text_file(path)?;
    let is_gmt = text.lines().any(|l| !l.starts_with('#') && l.split('\t').count() >= 3);
    let sets = if is_gmt { parse_gmt(&text, path)? } else { parse_set_tsv(&text, path)? };
    if sets.is_empty() {
        return Err(Error::file(path, "no gene sets found: expected GMT or `set<TAB>gene` lines"));
    }
    Ok(sets)
}

/// The default programs.
pub fn default_programs() -> Vec<GeneSet> {
    parse_gmt(DEFAULT_PROGRAMS_GMT, Path::new("programs.gmt")).expect("shipped programs parse")
}

/// The default cell-type markers.
pub fn default_markers() -> Vec<GeneSet> {
    parse_gmt(DEFAULT_MARKERS_GMT, Path::new("markers.gmt")).expect("shipped markers parse")
}

/// The alias table: alias -> current symbol (upper-case keys).
pub fn aliases() -> HashMap<String, String> {
    ALIASES_TSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("alias\t"))
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, s)| (a.to_ascii_uppercase(), s.to_string()))
        .collect()
}

/// A ligand-receptor pair; a complex lists its subunits separated by `_` or `+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LrPair {
    /// Ligand (or complex).
    pub ligand: String,
    /// Receptor (or complex).
    pub receptor: String,
}

/// The shipped TME ligand-receptor pairs.
pub fn default_lr_pairs() -> Vec<LrPair> {
    DEFAULT_LR_PAIRS_TSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("ligand\t"))
        .filter_map(|l| l.split_once('\t'))
        .map(|(l, r)| LrPair { ligand: l.trim().into(), receptor: r.trim().into() })
        .collect()
}

/// Every distinct gene named by the default programs, markers and ligand-receptor pairs, sorted.
pub fn all_default_genes() -> Vec<String> {
    let mut g: Vec<String> = default_programs()
        .into_iter()
        .chain(default_markers())
        .flat_map(|s| s.genes)
        .chain(default_lr_pairs().into_iter().flat_map(|p| [p.ligand, p.receptor]))
        .collect();
    g.sort();
    g.dedup();
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gene_sets_without_genes_are_errors() {
        let e = parse_gmt("A\tdesc\t\n", Path::new("s.gmt")).unwrap_err().to_string();
        assert!(e.contains("s.gmt (line 1)") && e.contains("lists no genes"), "{e}");
        let e = parse_set_tsv("MYSET\tno genes here\n", Path::new("s.tsv")).unwrap_err().to_string();
        assert!(e.contains("s.tsv (line 1)") && e.contains("not a gene symbol"), "{e}");
    }

    #[test]
    fn shipped_sets_parse() {
        let p = default_programs();
        assert_eq!(p.len(), 19);
        assert_eq!(p[0].name, "hypoxia_buffa");
        assert_eq!(p[0].genes.len(), 51);
        assert_eq!(default_lr_pairs().len(), 37);
        assert!(default_lr_pairs().iter().any(|p| p.ligand == "HLA-E" && p.receptor == "KLRC1"));
        assert_eq!(aliases().get("CTGF").map(String::as_str), Some("CCN2"));
        assert!(all_default_genes().len() > 150);
    }

    #[test]
    fn tsv_sets_parse() {
        let s = parse_set_tsv("set\tgene\na\tX\na\tY\nb\tZ\n", Path::new("f.tsv")).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].genes, vec!["X", "Y"]);
        assert!(parse_set_tsv("a\tb\tc\n", Path::new("f.tsv")).is_err());
    }
}
