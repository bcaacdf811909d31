//! Resistance niches: connected components (on the spatial graph, edges taken as undirected) of cells
//! whose Getis-Ord Gi* z-score of the resistance score is positive and significant (BH q below `alpha`),
//! keeping components of at least `min_size` cells. Union-find, O(edges x alpha(n)).
//!
//! Each component is summarised by [`summarise`]: dominant programs, evasion flags and the reprogramming
//! axis, a **research hypothesis** about which intervention axis the niche's biology points to, not a
//! treatment recommendation.

use petgraph::unionfind::UnionFind;
use tmescope_core::graph::NeighborGraph;

/// Resistance niche id of each cell (`None` outside); ids are 0, 1, ... by decreasing size.
pub fn resistance_niches(graph: &NeighborGraph, z: &[f64], q: &[f64], alpha: f64, min_size: usize) -> Vec<Option<u32>> {
    let n = graph.n;
    let hot: Vec<bool> = (0..n).map(|i| z[i] > 0.0 && q[i] < alpha).collect();
    let mut uf = UnionFind::<u32>::new(n);
    for i in 0..n {
        if !hot[i] {
            continue;
        }
        for &j in graph.neighbors_of(i) {
            if hot[j as usize] {
                uf.union(i as u32, j);
            }
        }
    }
    let mut size = std::collections::HashMap::new();
    for i in (0..n).filter(|&i| hot[i]) {
        *size.entry(uf.find(i as u32)).or_insert(0usize) += 1;
    }
    let mut comps: Vec<(u32, usize)> = size.into_iter().filter(|&(_, s)| s >= min_size.max(1)).collect();
    // Largest first; ties by the smallest root so ids do not depend on hash order.
    comps.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let id: std::collections::HashMap<u32, u32> = comps.iter().enumerate().map(|(k, (r, _))| (*r, k as u32)).collect();
    (0..n).map(|i| if hot[i] { id.get(&uf.find(i as u32)).copied() } else { None }).collect()
}

/// Summary of a group of cells (a niche or a resistance niche) from mean program z-scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Mechanisms {
    /// Up to three programs with the highest mean z-score (above 0), highest first.
    pub dominant_programs: Vec<String>,
    /// Evasion flags that hold.
    pub evasion_flags: Vec<String>,
    /// The reprogramming axis whose programs have the highest mean z (empty when none is above 0).
    pub axis: String,
}

/// Summarises mean program z-scores (`(program, mean z)`) into mechanisms; `t_cell_frac` is the mean
/// T-cell neighbourhood fraction of the cells.
pub fn summarise(
    program_means: &[(String, f64)],
    t_cell_frac: f64,
    axes: &std::collections::BTreeMap<String, Vec<String>>,
    ev: &crate::states::EvasionConfig,
) -> Mechanisms {
    let get = |name: &str| program_means.iter().find(|(p, _)| p == name).map(|(_, v)| *v);
    let mut sorted: Vec<&(String, f64)> =
        program_means.iter().filter(|(p, v)| v.is_finite() && *v > 0.0 && p != "resistance").collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let dominant_programs = sorted.iter().take(3).map(|(p, _)| p.clone()).collect();
    let mut evasion_flags = Vec::new();
    if get("checkpoint").is_some_and(|v| v > ev.checkpoint_high) {
        evasion_flags.push("checkpoint_high".to_string());
    }
    if get("mhc1_antigen_presentation").is_some_and(|v| v < ev.antigen_presentation_low) {
        evasion_flags.push("antigen_presentation_low".to_string());
    }
    let ifn = get("ifn_signalling_core").or(get("ifng_response"));
    if ifn.is_some_and(|v| v < ev.ifn_low) && t_cell_frac >= ev.t_cell_near {
        evasion_flags.push("ifn_signalling_low_near_t_cells".to_string());
    }
    let mut best = (String::new(), 0.0f64);
    for (axis, progs) in axes {
        let vals: Vec<f64> = progs.iter().filter_map(|p| get(p)).filter(|v| v.is_finite()).collect();
        if let Some(m) = vals.iter().cloned().reduce(f64::max) {
            if m > best.1 {
                best = (axis.clone(), m);
            }
        }
    }
    Mechanisms { dominant_programs, evasion_flags, axis: best.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::states::CompiledRules;

    #[test]
    fn components_above_min_size() {
        // Path 0-1-2-3-4-5; cells 0,1,2 and 4 are hot.
        let mut e = vec![];
        for i in 0..5u32 {
            e.push((i, i + 1, 1.0, 1.0));
        }
        let g = NeighborGraph::from_edges(6, e, true);
        let z = [3.0, 3.0, 3.0, -1.0, 3.0, 0.0];
        let q = [0.01, 0.01, 0.01, 0.01, 0.01, 0.9];
        let r = resistance_niches(&g, &z, &q, 0.05, 2);
        assert_eq!(r, vec![Some(0), Some(0), Some(0), None, None, None]);
    }

    #[test]
    fn mechanisms_pick_axis_and_flags() {
        let rules = CompiledRules::default_rules().rules;
        let means = vec![
            ("hypoxia_buffa".to_string(), 1.5),
            ("checkpoint".to_string(), 0.9),
            ("mhc1_antigen_presentation".to_string(), -1.0),
            ("ifn_signalling_core".to_string(), -0.8),
        ];
        let m = summarise(&means, 0.2, &rules.axes, &rules.evasion);
        assert_eq!(m.axis, "metabolic");
        assert_eq!(m.dominant_programs, vec!["hypoxia_buffa", "checkpoint"]);
        assert_eq!(m.evasion_flags.len(), 3);
        assert!(summarise(&means, 0.0, &rules.axes, &rules.evasion).evasion_flags.len() == 2);
    }
}
