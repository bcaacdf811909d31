//! Microenvironmental states from documented, configurable rules (TOML), and the cell-type groups the
//! rules and spatial metrics use.
//!
//! The shipped rules are [`DEFAULT_RULES_TOML`] (`crates/niche/data/rules.toml`, printed by
//! `tmescope niches --print-rules`). A rule is a list of conditions `feature op number` (`op` one of
//! `<`, `<=`, `>`, `>=`); states are tried in order and the first that matches wins. Evaluation is
//! O(states x conditions) per cell or niche.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tmescope_core::{Error, Result};

/// The shipped rules file.
pub const DEFAULT_RULES_TOML: &str = include_str!("../data/rules.toml");

/// Label given when no state rule matches.
pub const UNASSIGNED: &str = "unassigned";

/// The features a rule may use besides `frac.<group>` and `program.<name>`.
pub const FEATURES: [&str; 5] =
    ["resistance", "distance_to_endothelium", "distance_to_tumor", "distance_to_t_cell", "interface"];

/// A cell-type group (`tumor`, `t_cell`, ...) and the label patterns that join it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Group name, used as `frac.<name>` in rules.
    pub name: String,
    /// Patterns: `=x` matches the whole normalised label, anything else a substring.
    pub patterns: Vec<String>,
}

/// One state rule.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateRule {
    /// State name.
    pub name: String,
    /// Conditions that must all hold.
    #[serde(default)]
    pub all: Vec<String>,
    /// Conditions of which at least one must hold (ignored when empty).
    #[serde(default)]
    pub any: Vec<String>,
}

/// Thresholds of the spatial metrics.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Proportion at which a spot holds a cell type.
    pub presence: f64,
    /// Lower neighbourhood tumour fraction of the interface.
    pub interface_low: f64,
    /// Upper neighbourhood tumour fraction of the interface.
    pub interface_high: f64,
    /// Minimum neighbourhood tumour fraction of the tumour core.
    pub core_min: f64,
    /// Mean CD8 T neighbourhood fraction that counts as infiltrated (core) or present (margin).
    pub cd8_present: f64,
}

/// Resistance score weights.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResistanceConfig {
    /// Program name -> weight.
    pub weights: BTreeMap<String, f64>,
}

/// Evasion flag thresholds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvasionConfig {
    /// Mean checkpoint z above which `checkpoint_high` is flagged.
    pub checkpoint_high: f64,
    /// Mean MHC-I antigen presentation z below which `antigen_presentation_low` is flagged.
    pub antigen_presentation_low: f64,
    /// Mean IFN signalling z below which `ifn_signalling_low_near_t_cells` is flagged (with T cells near).
    pub ifn_low: f64,
    /// Mean T-cell neighbourhood fraction that counts as "near T cells".
    pub t_cell_near: f64,
}

/// The whole rules file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Cell-type groups.
    #[serde(rename = "group")]
    pub groups: Vec<Group>,
    /// States, in priority order.
    #[serde(rename = "state")]
    pub states: Vec<StateRule>,
    /// Spatial metric thresholds.
    pub metrics: MetricsConfig,
    /// Resistance score weights.
    pub resistance: ResistanceConfig,
    /// Reprogramming axes: axis -> programs.
    pub axes: BTreeMap<String, Vec<String>>,
    /// Evasion thresholds.
    pub evasion: EvasionConfig,
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Feature name.
    pub feature: String,
    /// Operator.
    pub op: String,
    /// Threshold.
    pub value: f64,
}

impl Condition {
    /// Parses `feature op number`; `source` and `state` locate errors.
    pub fn parse(text: &str, source: &Path, state: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let bad = || {
            Error::input(
                source,
                format!("state `{state}`, condition `{text}`"),
                "expected `feature op number` with op one of <, <=, >, >= (e.g. `frac.tumor >= 0.3`)",
            )
        };
        if parts.len() != 3 || !matches!(parts[1], "<" | "<=" | ">" | ">=") {
            return Err(bad());
        }
        let value: f64 = parts[2].parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(bad)?;
        Ok(Condition { feature: parts[0].to_string(), op: parts[1].to_string(), value })
    }

    /// Whether the condition holds for `x` (false when `x` is NaN or absent).
    pub fn holds(&self, x: Option<f64>) -> bool {
        match x {
            Some(x) if !x.is_nan() => match self.op.as_str() {
                "<" => x < self.value,
                "<=" => x <= self.value,
                ">" => x > self.value,
                _ => x >= self.value,
            },
            _ => false,
        }
    }
}

/// Rules with parsed conditions.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    /// The rules as read.
    pub rules: Rules,
    /// Per state: (`all`, `any`) conditions.
    pub conditions: Vec<(Vec<Condition>, Vec<Condition>)>,
}

impl CompiledRules {
    /// Parses rules text (TOML); `source` names the file in errors.
    pub fn parse(text: &str, source: &Path) -> Result<Self> {
        let rules: Rules = toml::from_str(text).map_err(|e| Error::file(source, format!("invalid rules TOML: {e}")))?;
        check_values(&rules, source)?;
        let groups: Vec<&str> = rules.groups.iter().map(|g| g.name.as_str()).collect();
        // A feature the stage does not know would make its condition false everywhere (a typo such as
        // `frac.myeloidz`), silently.
        let known = |c: &Condition| match c.feature.split_once('.') {
            Some(("frac", g)) => groups.contains(&g),
            Some(("program", p)) => !p.is_empty(),
            _ => FEATURES.contains(&c.feature.as_str()),
        };
        let mut conditions = Vec::new();
        for s in &rules.states {
            let all = s.all.iter().map(|c| Condition::parse(c, source, &s.name)).collect::<Result<Vec<_>>>()?;
            let any = s.any.iter().map(|c| Condition::parse(c, source, &s.name)).collect::<Result<Vec<_>>>()?;
            if let Some(c) = all.iter().chain(&any).find(|c| !known(c)) {
                return Err(Error::input(
                    source,
                    format!("state `{}`, feature `{}`", s.name, c.feature),
                    format!(
                        "unknown feature: expected frac.<group> (groups: {}), program.<name> or one of {}",
                        groups.join(", "),
                        FEATURES.join(", ")
                    ),
                ));
            }
            if all.is_empty() && any.is_empty() {
                return Err(Error::input(
                    source,
                    format!("state `{}`", s.name),
                    "expected at least one condition in `all` or `any`",
                ));
            }
            conditions.push((all, any));
        }
        Ok(CompiledRules { rules, conditions })
    }

    /// The shipped rules.
    pub fn default_rules() -> Self {
        Self::parse(DEFAULT_RULES_TOML, Path::new("rules.toml")).expect("shipped rules parse")
    }

    /// Reads rules from a file, or the defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        match path {
            None => Ok(Self::default_rules()),
            Some(p) => Self::parse(&tmescope_core::text::read_text_file(p)?, p),
        }
    }

    /// The first matching state for the features given by `get`, or [`UNASSIGNED`].
    pub fn classify(&self, get: &dyn Fn(&str) -> Option<f64>) -> &str {
        for (s, (all, any)) in self.rules.states.iter().zip(&self.conditions) {
            if all.iter().all(|c| c.holds(get(&c.feature)))
                && (any.is_empty() || any.iter().any(|c| c.holds(get(&c.feature))))
            {
                return &s.name;
            }
        }
        UNASSIGNED
    }

    /// Every feature name the rules reference.
    pub fn features(&self) -> Vec<String> {
        let mut f: Vec<String> =
            self.conditions.iter().flat_map(|(a, b)| a.iter().chain(b)).map(|c| c.feature.clone()).collect();
        f.sort();
        f.dedup();
        f
    }
}

/// An input error naming `source` for an empty group or state name, or a threshold or weight that is not
/// a finite number in its range.
fn check_values(rules: &Rules, source: &Path) -> Result<()> {
    let names = rules.groups.iter().map(|g| ("group", &g.name)).chain(rules.states.iter().map(|s| ("state", &s.name)));
    for (what, name) in names {
        if name.trim().is_empty() {
            return Err(Error::input(source, format!("a {what}"), "expected a name, found an empty one"));
        }
    }
    let m = &rules.metrics;
    let e = &rules.evasion;
    let fractions = [
        ("metrics.presence", m.presence),
        ("metrics.interface_low", m.interface_low),
        ("metrics.interface_high", m.interface_high),
        ("metrics.core_min", m.core_min),
        ("metrics.cd8_present", m.cd8_present),
        ("evasion.t_cell_near", e.t_cell_near),
    ];
    let bad = |key: &str, v: f64, expected: &str| {
        Error::input(source, format!("`{key}`"), format!("expected {expected}, found {v}"))
    };
    if let Some((key, v)) = fractions.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
        return Err(bad(key, *v, "a fraction in [0, 1]"));
    }
    if m.interface_low > m.interface_high {
        return Err(bad("metrics.interface_low", m.interface_low, "at most metrics.interface_high"));
    }
    let finite = [
        ("evasion.checkpoint_high".to_string(), e.checkpoint_high),
        ("evasion.antigen_presentation_low".into(), e.antigen_presentation_low),
        ("evasion.ifn_low".into(), e.ifn_low),
    ];
    let weights = rules.resistance.weights.iter().map(|(p, &w)| (format!("resistance.weights.{p}"), w));
    if let Some((key, v)) = finite.into_iter().chain(weights).find(|(_, v)| !v.is_finite()) {
        return Err(bad(&key, v, "a finite number"));
    }
    Ok(())
}

/// Normalises a label: lower case, each run of non-alphanumerics becomes one `_`, trimmed.
pub fn normalise_label(label: &str) -> String {
    let mut out = String::new();
    for ch in label.chars() {
        if ch.is_alphanumeric() {
            out.extend(ch.to_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// Group membership of each cell type: `member[type][group]`.
pub fn group_membership(cell_types: &[String], groups: &[Group]) -> Vec<Vec<bool>> {
    cell_types
        .iter()
        .map(|t| {
            let l = normalise_label(t);
            groups
                .iter()
                .map(|g| {
                    g.patterns.iter().any(|p| match p.strip_prefix('=') {
                        Some(exact) => l == exact,
                        None => l.contains(p.as_str()),
                    })
                })
                .collect()
        })
        .collect()
}

/// A lookup of named per-item features, for rule evaluation.
pub type FeatureMap<'a> = HashMap<String, &'a [f64]>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_parse_and_classify() {
        let r = CompiledRules::default_rules();
        // Seven states; immune-excluded has two rules (tumour side and stromal T-cell band).
        assert_eq!(r.rules.states.len(), 8);
        let f = |name: &str| match name {
            "frac.tumor" => Some(0.8),
            "frac.t_cell" => Some(0.01),
            "distance_to_t_cell" => Some(400.0),
            _ => None,
        };
        assert_eq!(r.classify(&f), "immune-desert");
        let g = |name: &str| if name == "program.hypoxia_buffa" { Some(2.0) } else { f(name) };
        assert_eq!(r.classify(&g), "hypoxic/glycolytic");
        assert_eq!(r.classify(&|_| None), UNASSIGNED);
        // A T-cell-rich, fibroblast-rich band next to tumour: excluded before CAF-rich.
        let band = |name: &str| match name {
            "frac.tumor" => Some(0.0),
            "frac.t_cell" => Some(0.4),
            "frac.caf" => Some(0.5),
            "distance_to_tumor" => Some(40.0),
            _ => None,
        };
        assert_eq!(r.classify(&band), "immune-excluded");
        let far = |name: &str| if name == "distance_to_tumor" { Some(400.0) } else { band(name) };
        assert_eq!(r.classify(&far), "fibrotic/CAF-rich");
    }

    #[test]
    fn bad_condition_names_the_state() {
        let text = DEFAULT_RULES_TOML.replace("frac.myeloid >= 0.3", "frac.myeloid => 0.3");
        let e = CompiledRules::parse(&text, Path::new("r.toml")).unwrap_err().to_string();
        assert!(e.contains("r.toml") && e.contains("myeloid-suppressive"), "{e}");
    }

    #[test]
    fn unknown_features_and_values_out_of_range_are_refused() {
        let refused = |from: &str, to: &str, parts: &[&str]| {
            let text = DEFAULT_RULES_TOML.replacen(from, to, 1);
            assert_ne!(text, DEFAULT_RULES_TOML, "{from}");
            let e = CompiledRules::parse(&text, Path::new("r.toml")).unwrap_err();
            assert!(e.is_user_error());
            for part in parts {
                assert!(e.to_string().contains(part), "{part} not in {e}");
            }
        };
        refused("frac.myeloid >= 0.3", "frac.myeloidz >= 0.3", &["feature `frac.myeloidz`", "groups: tumor"]);
        refused("distance_to_tumor <= 100", "distance_to_tumour <= 100", &["unknown feature", "distance_to_tumor"]);
        refused("frac.myeloid >= 0.3", "frac.myeloid >= NaN", &["myeloid-suppressive", "feature op number"]);
        refused("frac.myeloid >= 0.3", "frac.myeloid >= inf", &["myeloid-suppressive"]);
        refused("interface_low = 0.2", "interface_low = 0.9", &["`metrics.interface_low`", "interface_high"]);
        refused("interface_high = 0.8", "interface_high = nan", &["`metrics.interface_high`", "[0, 1]"]);
        refused("name = \"tumor\"", "name = \" \"", &["a group", "empty"]);
        let text = DEFAULT_RULES_TOML.replacen("[resistance.weights]", "[resistance.weights]\nextra = nan", 1);
        let e = CompiledRules::parse(&text, Path::new("r.toml")).unwrap_err().to_string();
        assert!(e.contains("`resistance.weights.extra`") && e.contains("finite"), "{e}");
    }

    #[test]
    fn groups_match_labels() {
        let r = CompiledRules::default_rules();
        let types: Vec<String> =
            ["Tumor", "CD8 T", "Macrophage", "CAF", "Endothelial"].iter().map(|s| s.to_string()).collect();
        let m = group_membership(&types, &r.rules.groups);
        let names: Vec<&str> = r.rules.groups.iter().map(|g| g.name.as_str()).collect();
        let idx = |g: &str| names.iter().position(|n| *n == g).unwrap();
        assert!(m[0][idx("tumor")] && !m[0][idx("t_cell")]);
        assert!(m[1][idx("t_cell")] && m[1][idx("cd8_t")]);
        assert!(m[2][idx("myeloid")] && m[3][idx("caf")] && m[4][idx("endothelial")]);
    }
}
