//! What a run folder is and how the report finds its files.
//!
//! A **sample run folder** holds one subfolder per stage (any may be missing):
//!
//! ```text
//! <sample>/dataset/        cells.parquet genes.parquet counts.parquet   (ingest or simulate)
//! <sample>/deconvolution/  proportions.parquet deconvolution_qc.parquet profiles.parquet
//! <sample>/graph/          edges.parquet (neighborhoods.parquet)
//! <sample>/stats/          nhood_enrichment.parquet cooccurrence.parquet autocorrelation.parquet ...
//! <sample>/scores/         programs.parquet
//! <sample>/niches/         niches.parquet niche_summary.parquet
//! <sample>/communication/  communication.parquet
//! ```
//!
//! A **compare folder** holds `differential.parquet` (the cross-sample comparison). A **cohort folder**
//! holds sample run folders side by side, and optionally `compare/`. The report accepts any mix of these;
//! a `compare/` folder beside given sample folders is picked up automatically.

use std::path::{Path, PathBuf};
use tmescope_core::{Error, Result};

/// The stage subfolders of a sample run folder.
pub const STAGE_FOLDERS: [&str; 7] =
    ["dataset", "deconvolution", "graph", "stats", "scores", "niches", "communication"];

/// The folder names searched for a file of each stage (the first existing wins; the sample folder itself
/// is searched last, so a flat folder of Parquet files also works).
pub fn stage_file(root: &Path, stage: &str, file: &str) -> Option<PathBuf> {
    let candidates = [root.join(stage).join(file), root.join(file)];
    candidates.into_iter().find(|p| p.is_file())
}

/// The folders given to the report, sorted out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// Sample run folders, in the order given (cohort folders expanded in name order).
    pub samples: Vec<PathBuf>,
    /// Folders holding `differential.parquet`.
    pub compare: Vec<PathBuf>,
}

fn is_sample_dir(p: &Path) -> bool {
    p.is_dir()
        && (STAGE_FOLDERS.iter().any(|s| p.join(s).is_dir())
            || ["cells.parquet", "niches.parquet", "programs.parquet"].iter().any(|f| p.join(f).is_file()))
}

fn is_compare_dir(p: &Path) -> bool {
    p.join("differential.parquet").is_file()
}

fn push_unique(v: &mut Vec<PathBuf>, p: PathBuf) {
    if !v.contains(&p) {
        v.push(p);
    }
}

/// Sorts the given folders into samples and comparisons.
pub fn discover(paths: &[PathBuf]) -> Result<Inputs> {
    let mut inputs = Inputs::default();
    for p in paths {
        if !p.exists() {
            return Err(Error::file(p, "run folder does not exist"));
        }
        if !p.is_dir() {
            return Err(Error::file(p, "expected a run folder, found a file"));
        }
        if is_compare_dir(p) && !is_sample_dir(p) {
            push_unique(&mut inputs.compare, p.clone());
            continue;
        }
        if is_sample_dir(p) {
            push_unique(&mut inputs.samples, p.clone());
            if is_compare_dir(p) {
                push_unique(&mut inputs.compare, p.clone());
            }
            continue;
        }
        // A cohort folder: its sample subfolders, and compare/ if any.
        let mut children: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| Error::io(p, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|c| c.is_dir() && !c.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        children.sort();
        let mut found = false;
        for c in children {
            if is_compare_dir(&c) && !is_sample_dir(&c) {
                push_unique(&mut inputs.compare, c);
                found = true;
            } else if is_sample_dir(&c) {
                push_unique(&mut inputs.samples, c);
                found = true;
            }
        }
        if !found {
            return Err(Error::file(
                p,
                format!(
                    "not a run folder: expected stage subfolders ({}), differential.parquet, or sample run folders",
                    STAGE_FOLDERS.join("/, ") + "/"
                ),
            ));
        }
    }
    // A compare/ folder beside the samples belongs to the same cohort.
    let parents: Vec<PathBuf> = inputs.samples.iter().filter_map(|s| s.parent().map(Path::to_path_buf)).collect();
    for parent in parents {
        let c = parent.join("compare");
        if is_compare_dir(&c) {
            push_unique(&mut inputs.compare, c);
        }
    }
    Ok(inputs)
}

/// `path` relative to the folder `base` (both made absolute first), with `/` separators, for HTML links.
pub fn relative_link(path: &Path, base: &Path) -> String {
    let abs = |p: &Path| p.canonicalize().unwrap_or_else(|_| std::env::current_dir().unwrap_or_default().join(p));
    let (p, b) = (abs(path), abs(base));
    let pc: Vec<_> = p.components().collect();
    let bc: Vec<_> = b.components().collect();
    let common = pc.iter().zip(&bc).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), bc.len() - common).collect();
    parts.extend(pc[common..].iter().map(|c| c.as_os_str().to_string_lossy().to_string()));
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cohort_folder_expands_to_samples_and_compare() {
        let tmp = tempfile::tempdir().unwrap();
        for s in ["b", "a"] {
            std::fs::create_dir_all(tmp.path().join(s).join("niches")).unwrap();
        }
        std::fs::create_dir_all(tmp.path().join("compare")).unwrap();
        std::fs::write(tmp.path().join("compare/differential.parquet"), b"x").unwrap();
        let got = discover(&[tmp.path().to_path_buf()]).unwrap();
        assert_eq!(got.samples, vec![tmp.path().join("a"), tmp.path().join("b")]);
        assert_eq!(got.compare, vec![tmp.path().join("compare")]);
        // Given one sample, the compare folder beside it is found.
        let got = discover(&[tmp.path().join("b")]).unwrap();
        assert_eq!(got.compare, vec![tmp.path().join("compare")]);
        let empty = tmp.path().join("a/niches");
        assert!(discover(&[empty]).is_err());
    }

    #[test]
    fn links_are_relative() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("run/s1/niches")).unwrap();
        std::fs::create_dir_all(tmp.path().join("out")).unwrap();
        let f = tmp.path().join("run/s1/niches/niches.parquet");
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(relative_link(&f, &tmp.path().join("out")), "../run/s1/niches/niches.parquet");
    }
}
