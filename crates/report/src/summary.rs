//! The plain-words summary at the top of the report, computed from the data.
//!
//! Per sample: how many resistance niches, what fraction of the tissue they cover, which programs are
//! most raised inside them (the difference between the mean score inside and outside, in units of the
//! program's standard deviation over all cells: a standardised mean difference), the dominant state
//! inside them, and the largest niche. Per cohort: the strongest significant changes of the comparison
//! (smallest q first), as fold changes when the effect is a log2 ratio. Sentences are built by pure
//! functions over small structs so they can be tested without files.

use crate::data::Sample;
use crate::read::NONE;

/// A readable name for a shipped program (unknown names are returned with `_` as spaces).
pub fn pretty_program(name: &str) -> String {
    let known = match name {
        "hypoxia_buffa" => "hypoxia",
        "tgfb_fibroblast_ftbrs" => "CAF/TGF-beta",
        "ifng_response" => "IFN-gamma response",
        "t_cell_inflamed" => "T-cell inflammation",
        "cytolytic" => "cytolytic activity",
        "t_cell_exhaustion" => "T-cell exhaustion",
        "caf_core" => "CAF",
        "mycaf" => "myofibroblastic CAF",
        "icaf" => "inflammatory CAF",
        "apcaf" => "antigen-presenting CAF",
        "ecm_stiffness" => "ECM stiffness",
        "m2_tam" => "M2-like macrophages",
        "mdsc" => "MDSC",
        "glycolysis_lactate" => "glycolysis/lactate",
        "mhc1_antigen_presentation" => "MHC-I antigen presentation",
        "ifn_signalling_core" => "IFN signalling",
        "checkpoint" => "immune checkpoints",
        "angiogenesis" => "angiogenesis",
        "emt_persister" => "EMT/persister",
        _ => "",
    };
    if known.is_empty() {
        name.replace('_', " ")
    } else {
        known.to_string()
    }
}

/// The facts of one sample the summary sentence is made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleFacts {
    /// Sample name.
    pub name: String,
    /// Condition, if known.
    pub condition: Option<String>,
    /// Number of cells / spots.
    pub n_cells: usize,
    /// Number of resistance niches (None when the niches stage did not run).
    pub n_resistance_niches: Option<usize>,
    /// Fraction of cells inside a resistance niche.
    pub resistance_fraction: f64,
    /// Programs most raised inside resistance niches (raw names, strongest first).
    pub resistance_programs: Vec<String>,
    /// Most common state inside resistance niches.
    pub resistance_state: Option<String>,
    /// Number of niches.
    pub n_niches: Option<usize>,
    /// The largest niche and its fraction of cells.
    pub largest_niche: Option<(String, f64)>,
}

/// One change between conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeFact {
    /// What changed (a niche or state name).
    pub label: String,
    /// `niche` or `state`, when known.
    pub kind: Option<String>,
    /// The contrast in words ("treated vs untreated"), when known.
    pub contrast: Option<String>,
    /// The effect size as stored.
    pub effect: f64,
    /// Whether `effect` is a log2 fold change.
    pub effect_is_log2: bool,
    /// FDR q-value.
    pub q: f64,
}

/// Formats a fraction as a percentage with sensible precision ("12%", "0.4%").
pub fn percent(f: f64) -> String {
    let p = 100.0 * f;
    if p > 0.0 && p < 1.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

/// Formats a q-value ("q = 0.003", "q < 0.001").
pub fn q_text(q: f64) -> String {
    if q < 0.001 {
        "q < 0.001".into()
    } else if q < 0.01 {
        format!("q = {q:.3}")
    } else {
        format!("q = {q:.2}")
    }
}

fn join_words(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [a] => a.clone(),
        [a, b] => format!("{a} and {b}"),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The summary sentence of one sample.
pub fn sample_sentence(f: &SampleFacts) -> String {
    let mut parts = Vec::new();
    let cond = f.condition.as_ref().map(|c| format!(" ({c})")).unwrap_or_default();
    let head = format!("{}{cond}: {} cells/spots", f.name, f.n_cells);
    match f.n_resistance_niches {
        None => parts.push("resistance niches not run".to_string()),
        Some(0) => parts.push("no resistance niche".to_string()),
        Some(k) => {
            let mut s = format!(
                "{k} resistance niche{}, {} of tissue",
                if k == 1 { "" } else { "s" },
                percent(f.resistance_fraction)
            );
            let progs: Vec<String> = f.resistance_programs.iter().take(2).map(|p| pretty_program(p)).collect();
            if !progs.is_empty() {
                s.push_str(&format!(", dominated by {}", join_words(&progs)));
            }
            if let Some(st) = &f.resistance_state {
                s.push_str(&format!(" (mostly {st})"));
            }
            parts.push(s);
        }
    }
    if let (Some(n), Some((name, frac))) = (f.n_niches, &f.largest_niche) {
        parts.push(format!("{n} niche{}, the largest {name} ({})", if n == 1 { "" } else { "s" }, percent(*frac)));
    }
    format!("{head}; {}.", parts.join("; "))
}

/// The summary sentence of a comparison: the significant changes (q < `alpha`), strongest evidence first.
pub fn cohort_sentence(changes: &[ChangeFact], alpha: f64, max_items: usize) -> String {
    let mut sig: Vec<&ChangeFact> = changes.iter().filter(|c| c.q.is_finite() && c.q < alpha).collect();
    if sig.is_empty() {
        let best = changes.iter().map(|c| c.q).filter(|q| q.is_finite()).fold(f64::INFINITY, f64::min);
        return if best.is_finite() {
            format!("No niche or state changed significantly between conditions (smallest {}).", q_text(best))
        } else {
            "No niche or state changes were tested.".to_string()
        };
    }
    sig.sort_by(|a, b| a.q.total_cmp(&b.q).then_with(|| b.effect.abs().total_cmp(&a.effect.abs())));
    let items: Vec<String> = sig.iter().take(max_items).map(|c| change_text(c)).collect();
    let more = sig.len().saturating_sub(max_items);
    let tail = if more > 0 {
        format!("; {more} more significant change{}", if more == 1 { "" } else { "s" })
    } else {
        String::new()
    };
    format!("{}{tail}.", capitalise(&items.join("; ")))
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// One change in words: "myeloid-suppressive area up 2.1x in treated vs untreated (q = 0.003)".
pub fn change_text(c: &ChangeFact) -> String {
    let what = match c.kind.as_deref() {
        Some("state") => format!("{} area", c.label),
        Some("niche") => format!("niche {}", c.label.strip_prefix("niche_").unwrap_or(&c.label)),
        Some("resistance") if c.label == "in_resistance_niche" => "resistance-niche area".to_string(),
        Some("resistance") if c.label == "outside" => "area outside resistance niches".to_string(),
        _ => c.label.clone(),
    };
    let dir = if c.effect >= 0.0 { "up" } else { "down" };
    let size = if c.effect_is_log2 {
        let fold = 2f64.powf(c.effect.abs());
        format!("{fold:.1}x")
    } else {
        format!("by {:.2} (effect size)", c.effect.abs())
    };
    let contrast = c.contrast.as_ref().map(|k| format!(" in {k}")).unwrap_or_default();
    format!("{what} {dir} {size}{contrast} ({})", q_text(c.q))
}

/// Computes the facts of a loaded sample.
pub fn sample_facts(s: &Sample) -> SampleFacts {
    let mut f =
        SampleFacts { name: s.name.clone(), condition: s.condition.clone(), n_cells: s.n_cells, ..Default::default() };
    if let Some(niche) = &s.niche {
        let counts = niche.counts();
        f.n_niches = Some(counts.iter().filter(|&&c| c > 0).count());
        let total: usize = counts.iter().sum();
        if let Some((i, &c)) = counts.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(&a.0))) {
            if total > 0 {
                f.largest_niche = Some((niche.names[i].clone(), c as f64 / total as f64));
            }
        }
    }
    let Some(rn) = &s.resistance_niche else {
        if s.niche.is_some() {
            f.n_resistance_niches = Some(0);
        }
        return f;
    };
    let inside: Vec<bool> = rn.codes.iter().map(|&c| c != NONE).collect();
    let n_in = inside.iter().filter(|&&b| b).count();
    f.n_resistance_niches = Some(rn.counts().iter().filter(|&&c| c > 0).count());
    f.resistance_fraction = if s.n_cells > 0 { n_in as f64 / s.n_cells as f64 } else { 0.0 };
    if n_in == 0 {
        return f;
    }
    let mut raised: Vec<(f64, String)> = s
        .programs
        .iter()
        // `resistance` is the combined score itself, not a mechanism.
        .filter(|p| p.name != "resistance")
        .filter_map(|p| standardised_difference(&p.score, &inside).map(|d| (d, p.name.clone())))
        .filter(|(d, _)| *d > 0.0)
        .collect();
    raised.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    f.resistance_programs = raised.into_iter().map(|(_, n)| n).collect();
    if let Some(state) = &s.state {
        let mut counts = vec![0usize; state.names.len()];
        for (c, &i) in state.codes.iter().zip(&inside) {
            if i && *c != NONE {
                counts[*c as usize] += 1;
            }
        }
        if let Some((k, &c)) = counts.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(&a.0))) {
            if c > 0 {
                f.resistance_state = Some(state.names[k].clone());
            }
        }
    }
    f
}

/// Mean inside minus mean outside, divided by the standard deviation over all finite values; None when
/// either group is empty or the values are constant.
pub fn standardised_difference(values: &[f32], inside: &[bool]) -> Option<f64> {
    let (mut si, mut ni, mut so, mut no, mut s2) = (0f64, 0usize, 0f64, 0usize, 0f64);
    for (&v, &i) in values.iter().zip(inside) {
        if !v.is_finite() {
            continue;
        }
        let v = v as f64;
        s2 += v * v;
        if i {
            si += v;
            ni += 1;
        } else {
            so += v;
            no += 1;
        }
    }
    if ni == 0 || no == 0 {
        return None;
    }
    let n = (ni + no) as f64;
    let mean = (si + so) / n;
    let var = (s2 / n - mean * mean).max(0.0);
    if var <= 1e-24 {
        return None;
    }
    Some((si / ni as f64 - so / no as f64) / var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_sentence_reads_like_the_issue() {
        let f = SampleFacts {
            name: "P1-post".into(),
            condition: Some("treated".into()),
            n_cells: 5000,
            n_resistance_niches: Some(3),
            resistance_fraction: 0.12,
            resistance_programs: vec!["tgfb_fibroblast_ftbrs".into(), "hypoxia_buffa".into(), "mdsc".into()],
            resistance_state: Some("fibrotic".into()),
            n_niches: Some(6),
            largest_niche: Some(("2".into(), 0.31)),
        };
        assert_eq!(
            sample_sentence(&f),
            "P1-post (treated): 5000 cells/spots; 3 resistance niches, 12% of tissue, dominated by CAF/TGF-beta \
             and hypoxia (mostly fibrotic); 6 niches, the largest 2 (31%)."
        );
    }

    #[test]
    fn sample_sentence_without_niches() {
        let f = SampleFacts { name: "s".into(), n_cells: 10, ..Default::default() };
        assert_eq!(sample_sentence(&f), "s: 10 cells/spots; resistance niches not run.");
        let f = SampleFacts {
            name: "s".into(),
            n_cells: 10,
            n_resistance_niches: Some(1),
            resistance_fraction: 0.004,
            ..Default::default()
        };
        assert_eq!(sample_sentence(&f), "s: 10 cells/spots; 1 resistance niche, 0.4% of tissue.");
    }

    #[test]
    fn cohort_sentence_reports_fold_changes_by_q() {
        let changes = vec![
            ChangeFact {
                label: "immune-inflamed".into(),
                kind: Some("state".into()),
                contrast: Some("treated vs untreated".into()),
                effect: -1.0,
                effect_is_log2: true,
                q: 0.04,
            },
            ChangeFact {
                label: "myeloid-suppressive".into(),
                kind: Some("state".into()),
                contrast: Some("treated vs untreated".into()),
                effect: 1.07,
                effect_is_log2: true,
                q: 0.003,
            },
            ChangeFact {
                label: "3".into(),
                kind: Some("niche".into()),
                contrast: None,
                effect: 0.5,
                effect_is_log2: false,
                q: 0.5,
            },
        ];
        assert_eq!(
            cohort_sentence(&changes, 0.05, 5),
            "Myeloid-suppressive area up 2.1x in treated vs untreated (q = 0.003); immune-inflamed area down 2.0x \
             in treated vs untreated (q = 0.04)."
        );
        assert_eq!(
            cohort_sentence(&changes[2..], 0.05, 5),
            "No niche or state changed significantly between conditions (smallest q = 0.50)."
        );
        assert_eq!(cohort_sentence(&changes, 0.05, 1).matches(';').count(), 1);
        let niche = ChangeFact { label: "niche_3".into(), kind: Some("niche".into()), q: 0.01, ..changes[2].clone() };
        assert_eq!(change_text(&niche), "niche 3 up by 0.50 (effect size) (q = 0.01)");
        assert!(cohort_sentence(&changes, 0.05, 1).ends_with("1 more significant change."));
    }

    #[test]
    fn standardised_difference_finds_raised_programs() {
        let v = [1.0f32, 1.0, 0.0, 0.0, f32::NAN];
        let inside = [true, true, false, false, true];
        assert!((standardised_difference(&v, &inside).unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(standardised_difference(&[1.0, 1.0], &[true, false]), None);
        assert_eq!(standardised_difference(&[1.0, 2.0], &[true, true]), None);
    }

    #[test]
    fn small_numbers_read_well() {
        assert_eq!(percent(0.123), "12%");
        assert_eq!(q_text(0.0004), "q < 0.001");
        assert_eq!(q_text(0.0031), "q = 0.003");
        assert_eq!(pretty_program("my_program"), "my program");
    }
}
