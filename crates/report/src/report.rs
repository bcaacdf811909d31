//! Assembling the report: load the run folders, prepare the figures, render them in parallel, write
//! `index.html`, and commit the output folder atomically.

use crate::cohort::{load_differential, Differential};
use crate::data::{fmt_num, load_sample, FileInfo, Sample};
use crate::figures::{convex_hull, histogram, render, Dot, Figure, Outline, Plot};
use crate::html::{esc, figure, href, not_run, slug, table, STYLE};
use crate::palette::{hex, Palette};
use crate::read::NONE;
use crate::rundir::{discover, relative_link};
use crate::summary::{cohort_sentence, pretty_program, sample_facts, sample_sentence, standardised_difference};
use plotters::style::RGBColor;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tmescope_core::output::OutputDir;
use tmescope_core::seed::{mix64, GOLDEN_GAMMA};
use tmescope_core::timing::timed;
use tmescope_core::{Error, Result};

/// Options of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// Most points drawn per tissue map (cells are downsampled for drawing only, stratified by niche).
    pub max_points: usize,
    /// Seed of the drawing downsample.
    pub seed: u64,
    /// Programs to map; empty = automatic (resistance-related programs present in the data).
    pub key_programs: Vec<String>,
    /// Ligand-receptor pairs shown per niche in the communication dot plot.
    pub top_pairs: usize,
    /// q-value threshold for "significant" in the summary and the change plot.
    pub alpha: f64,
    /// Report title.
    pub title: String,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            max_points: 50_000,
            seed: 0,
            key_programs: vec![],
            top_pairs: 5,
            alpha: 0.05,
            title: "tmescope niche report".into(),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOutcome {
    /// The `index.html` path.
    pub index: PathBuf,
    /// Samples in the report.
    pub n_samples: usize,
    /// Figures rendered (each as PNG and SVG).
    pub n_figures: usize,
    /// The summary lines at the top of the report.
    pub summary: Vec<String>,
}

/// Programs mapped when the user names none, in order of preference (resistance mechanisms first).
const KEY_PROGRAMS: [&str; 6] =
    ["tgfb_fibroblast_ftbrs", "hypoxia_buffa", "m2_tam", "checkpoint", "mdsc", "glycolysis_lactate"];

/// The palettes shared by every figure.
struct Palettes {
    cell_type: Palette,
    niche: Palette,
    state: Palette,
}

fn colours(p: &Palette, names: &[String]) -> Vec<RGBColor> {
    names.iter().map(|n| p.color(n)).collect()
}

/// SplitMix64's finaliser: a per-cell pseudo-random key, independent of thread count and of other cells.
fn mix(seed: u64, i: u64) -> u64 {
    mix64(seed ^ i.wrapping_mul(GOLDEN_GAMMA))
}

/// Indices of the cells to draw: all when there are at most `max`, otherwise a seeded sample stratified
/// by `strata` (each stratum keeps its share, and at least min(its size, 200) cells so rare niches stay
/// visible). The result is in random (seeded) order so no category is systematically painted last.
pub fn draw_subset(n: usize, strata: Option<&[u32]>, max: usize, seed: u64) -> Vec<usize> {
    let key = |i: usize| mix(seed, i as u64);
    let mut chosen: Vec<usize> = if n <= max {
        (0..n).collect()
    } else {
        let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for i in 0..n {
            let g = strata.and_then(|s| s.get(i).copied()).unwrap_or(0);
            groups.entry(g).or_default().push(i);
        }
        let mut out = Vec::with_capacity(max + 200 * groups.len());
        for (_, mut members) in groups {
            let share = (members.len() as f64 * max as f64 / n as f64).ceil() as usize;
            let quota = share.max(members.len().min(200)).min(members.len());
            if quota < members.len() {
                members.select_nth_unstable_by_key(quota, |&i| key(i));
                members.truncate(quota);
            }
            out.extend(members);
        }
        out
    };
    chosen.sort_by_key(|&i| (key(i), i));
    chosen
}

/// Renders the report for `run_dirs` into the folder `out`.
pub fn render_report(run_dirs: &[PathBuf], out: &Path, opts: &ReportOptions) -> Result<ReportOutcome> {
    if run_dirs.is_empty() {
        return Err(Error::Usage("give at least one run folder".into()));
    }
    if opts.max_points == 0 {
        return Err(Error::Usage("--max-points must be at least 1".into()));
    }
    let inputs = discover(run_dirs)?;
    let samples: Vec<Sample> = timed("report: read the run folders", || {
        inputs.samples.par_iter().map(|p| load_sample(p)).collect::<Result<_>>()
    })?;
    let diffs: Vec<Differential> =
        inputs.compare.iter().map(|c| load_differential(&c.join("differential.parquet"))).collect::<Result<_>>()?;
    let compare_files: Vec<FileInfo> =
        inputs.compare.iter().map(|c| crate::data::list_parquet(c)).collect::<Result<Vec<_>>>()?.concat();

    let pal = Palettes {
        cell_type: Palette::from_categories(samples.iter().flat_map(|s| {
            let mut v: Vec<String> = s.cell_type.iter().flat_map(|c| c.names.clone()).collect();
            v.extend(s.composition.iter().flat_map(|c| c.cell_types.clone()));
            v
        })),
        niche: Palette::from_categories(samples.iter().flat_map(|s| s.niche.iter().flat_map(|c| c.names.clone()))),
        state: Palette::from_categories(samples.iter().flat_map(|s| s.state.iter().flat_map(|c| c.names.clone()))),
    };

    // Where links point from: the final folder (the temporary one is its sibling, so relative links
    // that leave the folder resolve the same way after the rename).
    let out_abs = {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let parent = parent.canonicalize().map_err(|e| Error::io(&parent, e))?;
        parent.join(
            out.file_name().ok_or_else(|| Error::Usage(format!("output path {} has no folder name", out.display())))?,
        )
    };
    for s in &samples {
        let root = s.root.canonicalize().unwrap_or_else(|_| s.root.clone());
        if root.starts_with(&out_abs) {
            return Err(Error::Usage(format!(
                "the output folder {} contains the run folder {}; it would be replaced",
                out.display(),
                s.root.display()
            )));
        }
    }

    let mut figures: Vec<Figure> = Vec::new();
    let mut body = String::new();
    let mut summary_lines = Vec::new();
    let mut nav = vec![("summary".to_string(), "Summary".to_string())];

    // Per-sample sections.
    let mut sample_html = String::new();
    let mut used_slugs = BTreeSet::new();
    for (si, s) in samples.iter().enumerate() {
        let mut id = slug(&s.name);
        if !used_slugs.insert(id.clone()) {
            id = format!("{id}-{si}");
            used_slugs.insert(id.clone());
        }
        let facts = sample_facts(s);
        summary_lines.push(sample_sentence(&facts));
        nav.push((format!("sample-{id}"), s.name.clone()));
        sample_html.push_str(&sample_section(s, &id, &pal, opts, &mut figures));
    }

    // Cohort section.
    let cohort_html = cohort_section(&samples, &diffs, &pal, opts, &mut figures, &mut summary_lines);
    nav.push(("cohort".into(), "Cohort".into()));
    nav.push(("provenance".into(), "Parameters & provenance".into()));
    nav.push(("files".into(), "Files".into()));

    let outdir = OutputDir::create(out)?;
    let fig_dir = outdir.path("figures");
    std::fs::create_dir_all(&fig_dir).map_err(|e| Error::io(&fig_dir, e))?;
    timed(&format!("report: draw {} figures", figures.len()), || {
        figures.par_iter().map(|f| render(f, &fig_dir)).collect::<Result<Vec<()>>>()
    })?;

    // Summary.
    let _ = write!(body, "<section id=\"summary\"><h2>Summary</h2><ul class=\"summary\">");
    for l in &summary_lines {
        let _ = write!(body, "<li>{}</li>", esc(l));
    }
    body.push_str(
        "</ul><p class=\"howto\">Colours are the same in every figure and sample (a niche, state or cell type \
        keeps its colour). Tissue maps draw at most ",
    );
    let _ = write!(
        body,
        "{} points per sample (a seeded sample stratified by niche); every statistic and table uses all cells. \
         Click a figure for its SVG.</p></section>",
        opts.max_points
    );
    body.push_str(&sample_html);
    body.push_str(&cohort_html);
    body.push_str(&provenance_section(&samples, &compare_files, &out_abs));
    body.push_str(&files_section(&samples, &compare_files, &out_abs));

    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{t}</title><style>{STYLE}</style></head><body>\
         <header><h1>{t}</h1><p>{n} sample{pl}, made by tmescope {v}</p></header><nav>",
        t = esc(&opts.title),
        n = samples.len(),
        pl = if samples.len() == 1 { "" } else { "s" },
        v = tmescope_core::TOOL_VERSION
    );
    for (a, l) in &nav {
        let _ = write!(page, "<a href=\"#{}\">{}</a>", esc(a), esc(l));
    }
    let _ = writeln!(page, "</nav><main>{body}</main></body></html>");
    let index = outdir.path("index.html");
    std::fs::write(&index, page).map_err(|e| Error::io(&index, e))?;
    let final_dir = outdir.commit()?;
    Ok(ReportOutcome {
        index: final_dir.join("index.html"),
        n_samples: samples.len(),
        n_figures: figures.len(),
        summary: summary_lines,
    })
}

fn outlines_of(s: &Sample) -> Vec<Outline> {
    let Some(rn) = &s.resistance_niche else { return vec![] };
    let mut pts: Vec<Vec<(f64, f64)>> = vec![Vec::new(); rn.names.len()];
    for (i, &c) in rn.codes.iter().enumerate() {
        if c != NONE {
            pts[c as usize].push((s.x[i], s.y[i]));
        }
    }
    let mut out: Vec<Outline> = pts
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_empty())
        .map(|(k, p)| Outline { label: format!("RN {}", rn.names[k]), hull: convex_hull(p) })
        .collect();
    out.sort_by(|a, b| crate::palette::natural_cmp(&a.label[3..], &b.label[3..]));
    out
}

fn section_open(id: &str, title: &str) -> String {
    format!("<h3 id=\"{}\">{}</h3>", esc(id), esc(title))
}

fn sample_section(s: &Sample, id: &str, pal: &Palettes, opts: &ReportOptions, figures: &mut Vec<Figure>) -> String {
    let mut h = String::new();
    let cond = s.condition.as_ref().map(|c| format!(" · condition <b>{}</b>", esc(c))).unwrap_or_default();
    let _ = write!(
        h,
        "<section id=\"sample-{id}\"><h2>Sample {}</h2><p>{} cells/spots{cond} · run folder <code>{}</code></p><p>{}</p>",
        esc(&s.name),
        s.n_cells,
        esc(&s.root.display().to_string()),
        esc(&sample_sentence(&sample_facts(s)))
    );
    for n in &s.notes {
        let _ = write!(h, "<p class=\"note\">Note: {}</p>", esc(n));
    }

    // Tissue maps.
    h.push_str(&section_open(&format!("{id}-maps"), "Tissue maps"));
    h.push_str(
        "<p class=\"howto\">Each point is a cell or spot at its position (y grows downwards, as in the tissue \
        image). Resistance niches (connected areas of significantly high resistance score) are outlined in black by \
        the convex hull of their cells and labelled with their id.</p>",
    );
    if !s.has_positions {
        h.push_str(&not_run("tissue maps: no cell positions", "dataset/cells.parquet with x, y"));
    } else {
        let strata = s.niche.as_ref().or(s.cell_type.as_ref()).map(|c| c.codes.as_slice());
        let sub = draw_subset(s.n_cells, strata, opts.max_points, opts.seed);
        let x: Vec<f64> = sub.iter().map(|&i| s.x[i]).collect();
        let y: Vec<f64> = sub.iter().map(|&i| s.y[i]).collect();
        let outlines = outlines_of(s);
        let shown = if sub.len() < s.n_cells {
            format!(" ({} of {} cells drawn)", sub.len(), s.n_cells)
        } else {
            String::new()
        };
        h.push_str("<div class=\"grid\">");
        let mut cat_map =
            |key: &str, title: &str, cat: Option<&crate::data::Cat>, p: &Palette, outline: bool, missing: &str| {
                match cat {
                    Some(c) => {
                        let fid = format!("{id}-map-{key}");
                        figures.push(Figure {
                            id: fid.clone(),
                            title: format!("{} — {title}", s.name),
                            plot: Plot::CategoryMap {
                                x: x.clone(),
                                y: y.clone(),
                                codes: sub.iter().map(|&i| c.codes[i]).collect(),
                                names: c.names.clone(),
                                colors: colours(p, &c.names),
                                outlines: if outline { outlines.clone() } else { vec![] },
                            },
                        });
                        figure(&fid, &format!("{title}{}.", esc(&shown)))
                    }
                    None => not_run(title, missing),
                }
            };
        let ct_title = format!("cell type ({})", s.cell_type_source);
        h.push_str(&cat_map(
            "cell-type",
            &ct_title,
            s.cell_type.as_ref(),
            &pal.cell_type,
            false,
            "cell_type in cells.parquet or deconvolution/proportions.parquet",
        ));
        h.push_str(&cat_map("niche", "niches", s.niche.as_ref(), &pal.niche, true, "niches/niches.parquet"));
        h.push_str(&cat_map(
            "state",
            "microenvironmental states",
            s.state.as_ref(),
            &pal.state,
            true,
            "state in niches/niches.parquet",
        ));
        match &s.resistance_score {
            Some(score) => {
                let fid = format!("{id}-map-resistance");
                figures.push(Figure {
                    id: fid.clone(),
                    title: format!("{} — resistance score", s.name),
                    plot: Plot::ValueMap {
                        x: x.clone(),
                        y: y.clone(),
                        values: sub.iter().map(|&i| score[i]).collect(),
                        legend: "resistance score".into(),
                        outlines: outlines.clone(),
                    },
                });
                h.push_str(&figure(
                    &fid,
                    &format!(
                        "Resistance score (viridis, 2nd–98th percentile), resistance niches outlined{}.",
                        esc(&shown)
                    ),
                ));
            }
            None => h.push_str(&not_run("resistance score map", "resistance_score in niches/niches.parquet")),
        }
        let keys = key_programs(s, opts);
        for name in &keys {
            let Some(p) = s.programs.iter().find(|p| &p.name == name) else { continue };
            let smoothed = p.smoothed.iter().any(|v| v.is_finite());
            let values: Vec<f64> =
                sub.iter().map(|&i| if smoothed { p.smoothed[i] as f64 } else { p.score[i] as f64 }).collect();
            let fid = format!("{id}-map-program-{}", slug(name));
            figures.push(Figure {
                id: fid.clone(),
                title: format!("{} — {} ({})", s.name, pretty_program(name), name),
                plot: Plot::ValueMap {
                    x: x.clone(),
                    y: y.clone(),
                    values,
                    legend: if smoothed { "smoothed score".into() } else { "score".into() },
                    outlines: outlines.clone(),
                },
            });
            h.push_str(&figure(
                &fid,
                &format!(
                    "Program <b>{}</b>{}{}.",
                    esc(name),
                    if smoothed { " (neighbourhood-smoothed score)" } else { "" },
                    esc(&shown)
                ),
            ));
        }
        if keys.is_empty() {
            h.push_str(&not_run("program maps", "scores/programs.parquet"));
        }
        h.push_str("</div>");
    }

    // Composition per niche.
    h.push_str(&section_open(&format!("{id}-composition"), "Cell-type composition of each niche"));
    match (&s.composition, &s.niche) {
        (Some(c), Some(n)) => {
            let counts = n.counts();
            let order: Vec<usize> = {
                let mut o: Vec<usize> = (0..n.names.len()).filter(|&k| counts[k] > 0).collect();
                o.sort_by(|&a, &b| crate::palette::natural_cmp(&n.names[a], &n.names[b]));
                o
            };
            // Cell types in palette order so colours and legend agree across samples.
            let mut types: Vec<usize> = (0..c.cell_types.len()).collect();
            types.sort_by(|&a, &b| crate::palette::natural_cmp(&c.cell_types[a], &c.cell_types[b]));
            let fid = format!("{id}-composition");
            figures.push(Figure {
                id: fid.clone(),
                title: format!("{} — composition per niche", s.name),
                plot: Plot::StackedBars {
                    groups: order.iter().map(|&k| format!("niche {} (n={})", n.names[k], counts[k])).collect(),
                    categories: types.iter().map(|&t| c.cell_types[t].clone()).collect(),
                    colors: types.iter().map(|&t| pal.cell_type.color(&c.cell_types[t])).collect(),
                    fractions: order
                        .iter()
                        .map(|&k| {
                            types
                                .iter()
                                .map(|&t| c.fractions.get(k).and_then(|r| r.get(t)).copied().unwrap_or(0.0))
                                .collect()
                        })
                        .collect(),
                    x_label: "share of the niche".into(),
                },
            });
            h.push_str(&format!(
                "<div class=\"grid\">{}</div>",
                figure(&fid, &format!("Composition from {}.", esc(&c.source)))
            ));
        }
        _ => h.push_str(&not_run("niche composition", "niches/niches.parquet plus cell types")),
    }
    if let Some(t) = &s.niche_summary {
        h.push_str("<details><summary>Niche summary table (niche_summary.parquet)</summary>");
        h.push_str(&table(t));
        h.push_str("</details>");
    }

    // Neighbourhood enrichment.
    h.push_str(&section_open(&format!("{id}-enrichment"), "Neighbourhood enrichment"));
    match &s.enrichment {
        Some(e) if !e.types.is_empty() => {
            let fid = format!("{id}-enrichment");
            figures.push(Figure {
                id: fid.clone(),
                title: format!("{} — neighbourhood enrichment (z)", s.name),
                plot: Plot::Heatmap { labels: e.types.clone(), values: e.z.clone(), legend: "z-score".into() },
            });
            h.push_str(
                "<p class=\"howto\">z-score of how often cells of the row type neighbour cells of the column type, \
                against label permutations: red = more often than chance (co-localised), blue = less (segregated).</p>",
            );
            h.push_str(&format!("<div class=\"grid\">{}</div>", figure(&fid, "Neighbourhood-enrichment z-scores.")));
        }
        _ => h.push_str(&not_run("neighbourhood enrichment", "stats/nhood_enrichment.parquet")),
    }
    if let Some(t) = &s.autocorrelation {
        h.push_str("<details><summary>Strongest spatial autocorrelation (autocorrelation.parquet)</summary>");
        h.push_str(&table(t));
        h.push_str("</details>");
    }

    // Communication.
    h.push_str(&section_open(&format!("{id}-communication"), "Ligand-receptor communication"));
    match &s.communication {
        Some(rows) if !rows.is_empty() => {
            let (fig, tab) = communication_figure(s, id, rows, opts);
            let fid = fig.id.clone();
            figures.push(fig);
            h.push_str(
                "<p class=\"howto\">Top ligand-receptor pairs of each niche by score. Dot size: score (relative to \
                the largest shown); colour: −log10 q (yellow = strongest evidence).</p>",
            );
            if communication_from_proportions(s) {
                h.push_str(
                    "<p class=\"howto\">Scored on spots from their deconvolved proportions: the ligand weighted by \
                    the sender spot's proportion of the sender type, the receptor by the receiver spot's proportion \
                    of the receiver type (neighbouring spots only).</p>",
                );
            }
            h.push_str(&format!("<div class=\"grid\">{}</div>", figure(&fid, "Communication dot plot.")));
            h.push_str("<details><summary>Rows shown</summary>");
            h.push_str(&table(&tab));
            h.push_str("</details>");
        }
        Some(_) => h.push_str("<p class=\"notrun\">communication.parquet has no rows for this sample.</p>"),
        None => h.push_str(&not_run("communication", "communication/communication.parquet")),
    }

    // Deconvolution QC.
    h.push_str(&section_open(&format!("{id}-deconvolution-qc"), "Deconvolution QC"));
    match &s.qc {
        Some(q) => {
            let dropped: usize = q.dropped.values().sum();
            let _ = write!(
                h,
                "<p>{} spots; {} dropped ({}); {} did not converge.</p>",
                q.n_spots,
                dropped,
                crate::summary::percent(if q.n_spots > 0 { dropped as f64 / q.n_spots as f64 } else { 0.0 }),
                q.not_converged
            );
            h.push_str("<div class=\"grid\">");
            if !q.dropped.is_empty() {
                let fid = format!("{id}-qc-dropped");
                figures.push(Figure {
                    id: fid.clone(),
                    title: format!("{} — spots dropped, by reason", s.name),
                    plot: Plot::Bars {
                        labels: q.dropped.keys().cloned().collect(),
                        values: q.dropped.values().map(|&v| v as f64).collect(),
                        colors: vec![RGBColor(0xD5, 0x5E, 0x00); q.dropped.len()],
                        x_label: "spots".into(),
                    },
                });
                h.push_str(&figure(&fid, "Spots not fitted and why."));
            } else {
                h.push_str("<p>No spot was dropped.</p>");
            }
            if !q.classes.is_empty() {
                let fid = format!("{id}-qc-classes");
                let class_pal = Palette::from_categories(q.classes.keys());
                figures.push(Figure {
                    id: fid.clone(),
                    title: format!("{} — spot classes (doublet mode)", s.name),
                    plot: Plot::Bars {
                        labels: q.classes.keys().cloned().collect(),
                        values: q.classes.values().map(|&v| v as f64).collect(),
                        colors: q.classes.keys().map(|k| class_pal.color(k)).collect(),
                        x_label: "spots".into(),
                    },
                });
                h.push_str(&figure(&fid, "Spot classes: singlet, certain / uncertain doublet, reject."));
            } else {
                h.push_str("<p>No spot classes (not run in doublet mode).</p>");
            }
            h.push_str("</div>");
        }
        None => h.push_str(&not_run("deconvolution", "deconvolution/deconvolution_qc.parquet")),
    }

    // Program score distributions.
    h.push_str(&section_open(&format!("{id}-programs"), "Program score distributions"));
    if s.programs.is_empty() {
        h.push_str(&not_run("program scoring", "scores/programs.parquet"));
    } else {
        let fid = format!("{id}-program-distributions");
        let inside: Option<Vec<bool>> =
            s.resistance_niche.as_ref().map(|r| r.codes.iter().map(|&c| c != NONE).collect());
        figures.push(Figure {
            id: fid.clone(),
            title: format!("{} — program scores (all cells)", s.name),
            plot: Plot::Histograms {
                panels: s.programs.par_iter().map(|p| histogram(&p.name, &p.score, 40)).collect(),
            },
        });
        h.push_str(&format!(
            "<div class=\"grid\">{}</div>",
            figure(&fid, "Histograms of raw program scores over every cell (0.5th–99.5th percentile range).")
        ));
        if let Some(inside) = inside {
            h.push_str("<details open><summary>Programs raised inside resistance niches</summary><table><thead><tr><th>program</th>\
                <th>standardised difference (inside − outside, in SDs)</th></tr></thead><tbody>");
            let mut rows: Vec<(f64, &str)> = s
                .programs
                .iter()
                .filter_map(|p| standardised_difference(&p.score, &inside).map(|d| (d, p.name.as_str())))
                .collect();
            rows.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (d, n) in rows {
                let _ = write!(h, "<tr><td>{} ({})</td><td>{}</td></tr>", esc(n), esc(&pretty_program(n)), fmt_num(d));
            }
            h.push_str("</tbody></table></details>");
        }
    }
    h.push_str("</section>");
    h
}

fn key_programs(s: &Sample, opts: &ReportOptions) -> Vec<String> {
    let present = |n: &str| s.programs.iter().any(|p| p.name == n);
    if !opts.key_programs.is_empty() {
        return opts.key_programs.iter().filter(|n| present(n)).cloned().collect();
    }
    let mut keys: Vec<String> = KEY_PROGRAMS.iter().filter(|n| present(n)).take(4).map(|n| n.to_string()).collect();
    // The combined `resistance` program is already mapped as the resistance score.
    for p in &s.programs {
        if keys.len() >= 4 {
            break;
        }
        if !keys.contains(&p.name) && p.name != "resistance" {
            keys.push(p.name.clone());
        }
    }
    keys
}

/// Whether the sample's communication.parquet was scored from deconvolved proportions (its provenance's
/// command line has `--proportions`).
fn communication_from_proportions(s: &Sample) -> bool {
    s.files.iter().filter(|f| f.path.ends_with("communication.parquet")).any(|f| {
        let argv = f.provenance.as_ref().and_then(|p| p.get("command_line")).and_then(|c| c.as_array());
        argv.is_some_and(|a| a.iter().any(|w| w.as_str() == Some("--proportions")))
    })
}

fn communication_figure(
    s: &Sample,
    id: &str,
    rows: &[crate::data::CommRow],
    opts: &ReportOptions,
) -> (Figure, crate::data::TextTable) {
    let mut by_niche: BTreeMap<&str, Vec<&crate::data::CommRow>> = BTreeMap::new();
    for r in rows {
        by_niche.entry(r.niche.as_str()).or_default().push(r);
    }
    let mut niches: Vec<&str> = by_niche.keys().copied().collect();
    niches.sort_by(|a, b| crate::palette::natural_cmp(a, b));
    let mut chosen: Vec<&crate::data::CommRow> = Vec::new();
    for n in &niches {
        let mut v = by_niche[n].clone();
        // Significant pairs first, then by score.
        v.sort_by(|a, b| {
            let sa = a.q.is_finite() && a.q < opts.alpha;
            let sb = b.q.is_finite() && b.q < opts.alpha;
            sb.cmp(&sa).then_with(|| b.score.total_cmp(&a.score))
        });
        chosen.extend(v.into_iter().take(opts.top_pairs));
    }
    let pair = |r: &crate::data::CommRow| format!("{}→{} ({}→{})", r.ligand, r.receptor, r.sender, r.receiver);
    let mut labels: Vec<String> = chosen.iter().map(|r| pair(r)).collect();
    labels.sort();
    labels.dedup();
    let max_score = chosen.iter().map(|r| r.score).filter(|v| v.is_finite()).fold(0f64, f64::max).max(1e-12);
    let has_q = chosen.iter().any(|r| r.q.is_finite());
    // Every tested niche for each chosen pair, so absence is visible.
    let mut dots = Vec::new();
    for r in rows {
        let Ok(y) = labels.binary_search(&pair(r)) else { continue };
        let Some(x) = niches.iter().position(|n| *n == r.niche) else { continue };
        let color = if has_q {
            (-(r.q.max(1e-4)).log10() / 4.0).clamp(0.0, 1.0)
        } else {
            (r.score / max_score).clamp(0.0, 1.0)
        };
        dots.push(Dot { x, y, size: (r.score / max_score).clamp(0.0, 1.0), color });
    }
    let legend = if has_q {
        "size: score\ncolour: -log10 q\n(yellow: q <= 1e-4,\n purple: q = 1)".to_string()
    } else {
        "size and colour: score".to_string()
    };
    let fig = Figure {
        id: format!("{id}-communication"),
        title: format!("{} — top ligand-receptor pairs per niche", s.name),
        plot: Plot::DotPlot {
            x_labels: niches.iter().map(|n| format!("niche {n}")).collect(),
            y_labels: labels,
            dots,
            legend,
        },
    };
    let tab = crate::data::TextTable {
        columns: ["niche", "sender", "receiver", "ligand", "receptor", "score", "q"].map(String::from).to_vec(),
        rows: chosen
            .iter()
            .map(|r| {
                vec![
                    r.niche.clone(),
                    r.sender.clone(),
                    r.receiver.clone(),
                    r.ligand.clone(),
                    r.receptor.clone(),
                    fmt_num(r.score),
                    fmt_num(r.q),
                ]
            })
            .collect(),
        total_rows: chosen.len(),
    };
    (fig, tab)
}

fn abundance_figure(samples: &[&Sample], which: &str, pal: &Palette, id: &str) -> Option<Figure> {
    let cats: Vec<&crate::data::Cat> =
        samples.iter().filter_map(|s| if which == "niche" { s.niche.as_ref() } else { s.state.as_ref() }).collect();
    if cats.is_empty() {
        return None;
    }
    let categories: Vec<String> = pal.categories().to_vec();
    let mut groups = Vec::new();
    let mut fractions = Vec::new();
    for s in samples {
        let Some(c) = (if which == "niche" { s.niche.as_ref() } else { s.state.as_ref() }) else { continue };
        let counts = c.counts();
        let total: usize = counts.iter().sum();
        let mut row = vec![0.0; categories.len()];
        for (k, name) in c.names.iter().enumerate() {
            if let Some(pos) = categories.iter().position(|x| x == name) {
                row[pos] = if total > 0 { counts[k] as f64 / total as f64 } else { 0.0 };
            }
        }
        groups.push(format!("{} [{}]", s.name, s.condition.as_deref().unwrap_or("no condition")));
        fractions.push(row);
    }
    Some(Figure {
        id: id.to_string(),
        title: format!("{which} abundance per sample, grouped by condition"),
        plot: Plot::StackedBars {
            groups,
            colors: categories.iter().map(|c| pal.color(c)).collect(),
            categories,
            fractions,
            x_label: "share of the sample's cells".into(),
        },
    })
}

fn cohort_section(
    samples: &[Sample],
    diffs: &[Differential],
    pal: &Palettes,
    opts: &ReportOptions,
    figures: &mut Vec<Figure>,
    summary: &mut Vec<String>,
) -> String {
    let mut h = String::from("<section id=\"cohort\"><h2>Cohort</h2>");
    h.push_str(&section_open("cohort-abundance", "Niche and state abundance per sample"));
    let mut ordered: Vec<&Sample> = samples.iter().collect();
    ordered.sort_by(|a, b| a.condition.cmp(&b.condition).then_with(|| a.name.cmp(&b.name)));
    if samples.len() < 2 {
        h.push_str("<p class=\"note\">One sample: abundance is shown for comparison with later runs.</p>");
    }
    let mut any = false;
    h.push_str("<div class=\"grid\">");
    for (which, p) in [("niche", &pal.niche), ("state", &pal.state)] {
        if let Some(f) = abundance_figure(&ordered, which, p, &format!("cohort-{which}-abundance")) {
            let id = f.id.clone();
            figures.push(f);
            h.push_str(&figure(
                &id,
                &format!("Share of each sample's cells in each {which}; samples sorted by condition."),
            ));
            any = true;
        }
    }
    h.push_str("</div>");
    if !any {
        h.push_str(&not_run("niche and state abundance", "niches/niches.parquet"));
    }
    // Colour key as HTML too (searchable text).
    for (title, p) in [("niches", &pal.niche), ("states", &pal.state), ("cell types", &pal.cell_type)] {
        if p.categories().is_empty() {
            continue;
        }
        let _ = write!(h, "<p class=\"note\">Colours of {title}: ");
        for c in p.categories() {
            let _ =
                write!(h, "<span class=\"swatch\" style=\"background:{}\"></span>{} &nbsp; ", hex(p.color(c)), esc(c));
        }
        h.push_str("</p>");
    }

    h.push_str(&section_open("differential", "Differential abundance between conditions"));
    if diffs.is_empty() {
        h.push_str(&not_run("comparison between conditions", "compare/differential.parquet"));
    }
    for (di, d) in diffs.iter().enumerate() {
        let sentence = cohort_sentence(&d.changes, opts.alpha, 3);
        summary.push(sentence.clone());
        let _ = write!(
            h,
            "<p><b>{}</b></p><p class=\"note\">From <code>{}</code>; effect column <code>{}</code>{}.</p>",
            esc(&sentence),
            esc(&d.path.display().to_string()),
            esc(&d.effect_column),
            if d.effect_column.contains("log2") { " (log2 fold change: +1 = doubled)" } else { "" }
        );
        let mut idx: Vec<usize> = (0..d.changes.len()).filter(|&i| d.changes[i].effect.is_finite()).collect();
        idx.sort_by(|&a, &b| d.changes[a].q.total_cmp(&d.changes[b].q).then_with(|| a.cmp(&b)));
        idx.truncate(30);
        if !idx.is_empty() {
            let fid = format!("cohort-differential-{di}");
            figures.push(Figure {
                id: fid.clone(),
                title: "Changes between conditions".into(),
                plot: Plot::Effects {
                    labels: idx
                        .iter()
                        .map(|&i| {
                            let c = &d.changes[i];
                            let kind = c.kind.as_deref().map(|k| format!("{k} ")).unwrap_or_default();
                            let contrast = c.contrast.as_deref().map(|k| format!(", {k}")).unwrap_or_default();
                            format!("{kind}{}{contrast} (q={})", c.label, fmt_num(c.q))
                        })
                        .collect(),
                    effects: idx.iter().map(|&i| d.changes[i].effect).collect(),
                    significant: idx.iter().map(|&i| d.changes[i].q < opts.alpha).collect(),
                    x_label: d.effect_column.clone(),
                },
            });
            h.push_str(&format!(
                "<div class=\"grid\">{}</div>",
                figure(&fid, "Effect sizes, smallest q first (at most 30).")
            ));
        }
        h.push_str(&table(&d.table));
    }
    h.push_str("</section>");
    h
}

fn provenance_section(samples: &[Sample], compare_files: &[FileInfo], out_abs: &Path) -> String {
    let mut h = String::from(
        "<section id=\"provenance\"><h2>Parameters and provenance</h2><p class=\"howto\">Read from each file's \
         <code>tmescope.provenance</code> metadata: the stage that wrote it, the tool version, the seed and every \
         parameter (defaults included).</p>",
    );
    let all: Vec<(&str, &FileInfo)> = samples
        .iter()
        .flat_map(|s| s.files.iter().map(move |f| (s.name.as_str(), f)))
        .chain(compare_files.iter().map(|f| ("cohort", f)))
        .collect();
    if all.is_empty() {
        h.push_str("<p class=\"notrun\">No Parquet files found.</p>");
    }
    // One entry per distinct (stage, parameters): the run's parameters without repeating them per file.
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut details: BTreeMap<String, String> = BTreeMap::new();
    for (sample, f) in &all {
        let Some(p) = &f.provenance else { continue };
        let stage = p.get("stage").and_then(|v| v.as_str()).unwrap_or("?").to_string();
        let params =
            p.get("parameters").map(|v| serde_json::to_string_pretty(v).unwrap_or_default()).unwrap_or_default();
        let version = p.get("tool_version").and_then(|v| v.as_str()).unwrap_or("?");
        let seed = p.get("seed").map(|v| v.to_string()).unwrap_or_else(|| "null".into());
        let key = format!("{stage}\u{0}{params}");
        seen.entry(key.clone()).or_default().push(format!("{sample}/{}", f.display));
        details.entry(key).or_insert_with(|| {
            let cmd = p
                .get("command_line")
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            let notes = p
                .get("notes")
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_str()).map(esc).collect::<Vec<_>>().join("<br>"))
                .unwrap_or_default();
            format!(
                "tool version {}, seed {}<br>command: <code>{}</code>{}<pre>{}</pre>",
                esc(version),
                esc(&seed),
                esc(&cmd),
                if notes.is_empty() { String::new() } else { format!("<br>notes: {notes}") },
                esc(&params)
            )
        });
    }
    for (key, files) in &seen {
        let stage = key.split('\u{0}').next().unwrap_or("?");
        let _ = write!(
            h,
            "<details><summary>stage <b>{}</b> — {} file{}</summary><p class=\"note\">{}</p>{}</details>",
            esc(stage),
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            esc(&files.join(", ")),
            details.get(key).cloned().unwrap_or_default()
        );
    }
    let without: Vec<String> =
        all.iter().filter(|(_, f)| f.provenance.is_none()).map(|(s, f)| format!("{s}/{}", f.display)).collect();
    if !without.is_empty() {
        let _ = write!(h, "<p class=\"note\">No provenance in: {}</p>", esc(&without.join(", ")));
    }
    let _ = out_abs;
    h.push_str("</section>");
    h
}

fn files_section(samples: &[Sample], compare_files: &[FileInfo], out_abs: &Path) -> String {
    let mut h = String::from(
        "<section id=\"files\"><h2>Files</h2><p class=\"howto\">Links to every Parquet file of the run (relative to \
         this report, so keep the report folder next to the run folders when moving them). Open them with polars, \
         pandas, R arrow or DuckDB.</p><table><thead><tr><th>sample</th><th>file</th><th>rows</th><th>size</th>\
         <th>stage</th></tr></thead><tbody>",
    );
    let rows = samples
        .iter()
        .flat_map(|s| s.files.iter().map(move |f| (s.name.clone(), f)))
        .chain(compare_files.iter().map(|f| ("cohort".to_string(), f)));
    for (sample, f) in rows {
        let link = relative_link(&f.path, out_abs);
        let stage = f.provenance.as_ref().and_then(|p| p.get("stage")).and_then(|v| v.as_str()).unwrap_or("");
        let _ = write!(
            h,
            "<tr><td>{}</td><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&sample),
            href(&link),
            esc(&f.display),
            f.rows,
            human_bytes(f.bytes),
            esc(stage)
        );
    }
    h.push_str("</tbody></table></section>");
    h
}

fn human_bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_subset_keeps_small_samples_whole_and_is_seeded() {
        let all = draw_subset(10, None, 100, 1);
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        let strata: Vec<u32> = (0..10_000).map(|i| if i < 100 { 1 } else { 0 }).collect();
        let a = draw_subset(10_000, Some(&strata), 1_000, 7);
        let b = draw_subset(10_000, Some(&strata), 1_000, 7);
        assert_eq!(a, b);
        // The rare stratum keeps all 100 cells (min(size, 200)), the big one about its share.
        assert_eq!(a.iter().filter(|&&i| i < 100).count(), 100);
        assert!(a.len() <= 1_100 && a.len() >= 1_000, "{}", a.len());
        assert_ne!(a, draw_subset(10_000, Some(&strata), 1_000, 8));
    }
}
