//! The report's figures, drawn with plotters to SVG and PNG from the same code.
//!
//! A [`Figure`] is plain data (points, bars, matrix cells) prepared by the report from the statistics;
//! [`render`] draws it on both backends. Text is drawn with the embedded DejaVu Sans (registered once as
//! `sans-serif` through plotters' `ab_glyph` support), so no system font library is needed. Figures
//! are independent, so the report renders them in parallel (rayon); each is O(points drawn).

use crate::palette::{diverging, viridis, MISSING};
use plotters::coord::Shift;
use plotters::element::{Circle, PathElement, Rectangle};
use plotters::prelude::{BitMapBackend, ChartBuilder, DrawingArea, DrawingBackend, IntoDrawingArea, SVGBackend};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontTransform, IntoFont, RGBColor, ShapeStyle, TextStyle, BLACK, WHITE};
use std::path::Path;
use std::sync::Once;
use tmescope_core::{Error, Result};

/// The embedded font (DejaVu Sans; Bitstream Vera licence, see `assets/DejaVuSans-LICENSE.txt`).
pub static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The font family name figures use.
const FAMILY: &str = "sans-serif";

static REGISTER: Once = Once::new();

/// Registers the embedded font with plotters (idempotent).
pub fn register_font() {
    REGISTER.call_once(|| {
        // The font is a fixed, valid asset; a failure here would be a packaging bug, and text would then
        // be missing from PNGs rather than the report failing.
        let _ = plotters::style::register_font(FAMILY, plotters::style::FontStyle::Normal, FONT);
    });
}

/// A resistance-niche outline: the convex hull of its cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Outline {
    /// Resistance niche id.
    pub label: String,
    /// Hull vertices in data coordinates (closed implicitly).
    pub hull: Vec<(f64, f64)>,
}

/// One histogram panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Panel title.
    pub name: String,
    /// Lower edge of the first bin.
    pub lo: f64,
    /// Upper edge of the last bin.
    pub hi: f64,
    /// Counts per equal-width bin.
    pub counts: Vec<u64>,
}

/// One dot of a dot plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    /// Column index.
    pub x: usize,
    /// Row index.
    pub y: usize,
    /// Size in [0, 1].
    pub size: f64,
    /// Colour value in [0, 1] (viridis).
    pub color: f64,
}

/// What a figure shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Plot {
    /// Points coloured by category.
    CategoryMap {
        /// x of the drawn points.
        x: Vec<f64>,
        /// y of the drawn points (drawn downwards, as in images).
        y: Vec<f64>,
        /// Category code per point (index into `names`, `u32::MAX` for missing).
        codes: Vec<u32>,
        /// Category names.
        names: Vec<String>,
        /// Colour per category.
        colors: Vec<RGBColor>,
        /// Outlines drawn on top.
        outlines: Vec<Outline>,
    },
    /// Points coloured by a continuous value (viridis).
    ValueMap {
        /// x of the drawn points.
        x: Vec<f64>,
        /// y of the drawn points.
        y: Vec<f64>,
        /// Value per point (NaN drawn grey).
        values: Vec<f64>,
        /// Colour-bar label.
        legend: String,
        /// Outlines drawn on top.
        outlines: Vec<Outline>,
    },
    /// Horizontal 100% stacked bars (one per group).
    StackedBars {
        /// Bar labels.
        groups: Vec<String>,
        /// Segment categories.
        categories: Vec<String>,
        /// Colour per category.
        colors: Vec<RGBColor>,
        /// fractions[group][category].
        fractions: Vec<Vec<f64>>,
        /// Axis label.
        x_label: String,
    },
    /// A square matrix of signed values (diverging colours).
    Heatmap {
        /// Row and column labels.
        labels: Vec<String>,
        /// values[row][col].
        values: Vec<Vec<f64>>,
        /// Colour-bar label.
        legend: String,
    },
    /// Dots on a grid: size and colour encode two values.
    DotPlot {
        /// Column labels.
        x_labels: Vec<String>,
        /// Row labels.
        y_labels: Vec<String>,
        /// The dots.
        dots: Vec<Dot>,
        /// Legend text.
        legend: String,
    },
    /// Horizontal bars.
    Bars {
        /// Bar labels.
        labels: Vec<String>,
        /// Bar lengths (>= 0).
        values: Vec<f64>,
        /// Colour per bar.
        colors: Vec<RGBColor>,
        /// Axis label.
        x_label: String,
    },
    /// Small multiples of histograms.
    Histograms {
        /// The panels.
        panels: Vec<Histogram>,
    },
    /// Signed horizontal bars (effect sizes), significant ones coloured.
    Effects {
        /// Bar labels.
        labels: Vec<String>,
        /// Effect per bar.
        effects: Vec<f64>,
        /// Whether each is significant.
        significant: Vec<bool>,
        /// Axis label.
        x_label: String,
    },
}

/// A figure with its file stem and title.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem under `figures/` (`<stem>.png`, `<stem>.svg`).
    pub id: String,
    /// Title drawn at the top.
    pub title: String,
    /// Content.
    pub plot: Plot,
}

/// Colour of significant effects and of neutral bars (Okabe-Ito blue) and of the rest (grey).
const SIGNIFICANT: RGBColor = RGBColor(0x00, 0x72, 0xB2);
const NOT_SIGNIFICANT: RGBColor = RGBColor(0xAA, 0xAA, 0xAA);

fn font(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

fn left(size: f64) -> TextStyle<'static> {
    font(size).pos(Pos::new(HPos::Left, VPos::Center))
}

fn right(size: f64) -> TextStyle<'static> {
    font(size).pos(Pos::new(HPos::Right, VPos::Center))
}

fn centre(size: f64) -> TextStyle<'static> {
    font(size).pos(Pos::new(HPos::Center, VPos::Center))
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    } else {
        s.to_string()
    }
}

/// Pixel size of a figure.
pub fn size_of(fig: &Figure) -> (u32, u32) {
    match &fig.plot {
        Plot::CategoryMap { .. } | Plot::ValueMap { .. } => (900, 720),
        Plot::StackedBars { groups, categories, .. } => {
            (900, (110 + 34 * groups.len() as u32 + 22 * categories.len().div_ceil(4) as u32).max(220))
        }
        Plot::Heatmap { labels, .. } => {
            let n = labels.len() as u32;
            (280 + 40 * n + 120, 240 + 40 * n)
        }
        Plot::DotPlot { x_labels, y_labels, .. } => {
            (360 + 70 * x_labels.len() as u32 + 120, 160 + 24 * y_labels.len() as u32)
        }
        Plot::Bars { labels, .. } => (760, 110 + 30 * labels.len() as u32),
        Plot::Histograms { panels } => (900, 60 + 220 * panels.len().div_ceil(3) as u32),
        Plot::Effects { labels, .. } => (900, 130 + 26 * labels.len() as u32),
    }
}

/// Writes `<dir>/<id>.svg` and `<dir>/<id>.png`.
pub fn render(fig: &Figure, dir: &Path) -> Result<()> {
    register_font();
    let size = size_of(fig);
    let err = |kind: &str, e: String| Error::Internal(format!("drawing figure {} ({kind}): {e}", fig.id));
    let svg_path = dir.join(format!("{}.svg", fig.id));
    {
        let root = SVGBackend::new(&svg_path, size).into_drawing_area();
        draw(&root, fig).map_err(|e| err("svg", e))?;
        root.present().map_err(|e| err("svg", e.to_string()))?;
    }
    let png_path = dir.join(format!("{}.png", fig.id));
    {
        let root = BitMapBackend::new(&png_path, size).into_drawing_area();
        draw(&root, fig).map_err(|e| err("png", e))?;
        root.present().map_err(|e| err("png", e.to_string()))?;
    }
    Ok(())
}

type DrawResult = std::result::Result<(), String>;

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure) -> DrawResult {
    root.fill(&WHITE).map_err(s)?;
    let (w, _) = root.dim_in_pixel();
    root.draw_text(&fig.title, &font(20.0).pos(Pos::new(HPos::Center, VPos::Top)), (w as i32 / 2, 10)).map_err(s)?;
    let body = root.margin(44, 10, 10, 10);
    match &fig.plot {
        Plot::CategoryMap { x, y, codes, names, colors, outlines } => {
            let (plot, legend) = body.split_horizontally(w.saturating_sub(240));
            let tf = MapTransform::fit(x, y, outlines, plot.dim_in_pixel());
            let r = tf.radius(x.len());
            for ((&px, &py), &c) in x.iter().zip(y).zip(codes) {
                let color = colors.get(c as usize).copied().unwrap_or(MISSING);
                if let Some(p) = tf.apply(px, py) {
                    plot.draw(&Circle::new(p, r, ShapeStyle::from(&color).filled())).map_err(s)?;
                }
            }
            draw_outlines(&plot, &tf, outlines)?;
            let mut entries: Vec<(String, RGBColor)> = names.iter().cloned().zip(colors.iter().copied()).collect();
            entries.sort_by(|a, b| crate::palette::natural_cmp(&a.0, &b.0));
            if codes.contains(&u32::MAX) {
                entries.push(("not assigned".into(), MISSING));
            }
            draw_legend(&legend, &entries, !outlines.is_empty())?;
        }
        Plot::ValueMap { x, y, values, legend, outlines } => {
            let (plot, leg) = body.split_horizontally(w.saturating_sub(240));
            let tf = MapTransform::fit(x, y, outlines, plot.dim_in_pixel());
            let r = tf.radius(x.len());
            let (lo, hi) = robust_range(values);
            // Missing values first so coloured points sit on top of them.
            for pass in [false, true] {
                for ((&px, &py), &v) in x.iter().zip(y).zip(values) {
                    if v.is_finite() != pass {
                        continue;
                    }
                    let color = if v.is_finite() { viridis((v - lo) / (hi - lo)) } else { MISSING };
                    if let Some(p) = tf.apply(px, py) {
                        plot.draw(&Circle::new(p, r, ShapeStyle::from(&color).filled())).map_err(s)?;
                    }
                }
            }
            draw_outlines(&plot, &tf, outlines)?;
            draw_colorbar(&leg, legend, lo, hi, viridis)?;
            if !outlines.is_empty() {
                leg.draw(&PathElement::new(vec![(10, 300), (40, 300)], BLACK.stroke_width(2))).map_err(s)?;
                leg.draw_text("resistance niche", &left(13.0), (48, 300)).map_err(s)?;
            }
        }
        Plot::StackedBars { groups, categories, colors, fractions, x_label } => {
            let label_w = 170i32;
            let (bw, _) = body.dim_in_pixel();
            let bar_w = bw as i32 - label_w - 20;
            for (g, name) in groups.iter().enumerate() {
                let y0 = 10 + 34 * g as i32;
                body.draw_text(&truncate(name, 24), &right(13.0), (label_w - 8, y0 + 13)).map_err(s)?;
                let mut x0 = label_w as f64;
                for (c, &f) in fractions.get(g).map(Vec::as_slice).unwrap_or(&[]).iter().enumerate() {
                    if !(f.is_finite() && f > 0.0) {
                        continue;
                    }
                    let x1 = x0 + f * bar_w as f64;
                    let color = colors.get(c).copied().unwrap_or(MISSING);
                    body.draw(&Rectangle::new([(x0 as i32, y0), (x1.round() as i32, y0 + 26)], color.filled()))
                        .map_err(s)?;
                    x0 = x1;
                }
            }
            let axis_y = 10 + 34 * groups.len() as i32;
            for t in 0..=4 {
                let x = label_w + bar_w * t / 4;
                body.draw(&PathElement::new(vec![(x, axis_y), (x, axis_y + 5)], BLACK)).map_err(s)?;
                body.draw_text(&format!("{}%", 25 * t), &centre(12.0), (x, axis_y + 14)).map_err(s)?;
            }
            body.draw_text(x_label, &centre(13.0), (label_w + bar_w / 2, axis_y + 32)).map_err(s)?;
            // Legend rows of four under the axis.
            for (c, name) in categories.iter().enumerate() {
                let col = (c % 4) as i32;
                let row = (c / 4) as i32;
                let (lx, ly) = (20 + col * 215, axis_y + 56 + 22 * row);
                let color = colors.get(c).copied().unwrap_or(MISSING);
                body.draw(&Rectangle::new([(lx, ly - 7), (lx + 14, ly + 7)], color.filled())).map_err(s)?;
                body.draw_text(&truncate(name, 26), &left(12.0), (lx + 20, ly)).map_err(s)?;
            }
        }
        Plot::Heatmap { labels, values, legend } => {
            let n = labels.len() as i32;
            let cell = 40;
            let x0 = 190;
            let y0 = 150;
            let limit = values.iter().flatten().filter(|v| v.is_finite()).fold(0f64, |m, v| m.max(v.abs())).max(1e-9);
            for (i, row) in values.iter().enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    let (cx, cy) = (x0 + cell * j as i32, y0 + cell * i as i32);
                    body.draw(&Rectangle::new(
                        [(cx, cy), (cx + cell - 1, cy + cell - 1)],
                        diverging(v, limit).filled(),
                    ))
                    .map_err(s)?;
                    if n <= 14 && v.is_finite() {
                        body.draw_text(&format!("{v:.0}"), &centre(11.0), (cx + cell / 2, cy + cell / 2)).map_err(s)?;
                    }
                }
            }
            for (i, l) in labels.iter().enumerate() {
                let name = truncate(l, 22);
                body.draw_text(&name, &right(12.0), (x0 - 6, y0 + cell * i as i32 + cell / 2)).map_err(s)?;
                let style = font(12.0).transform(FontTransform::Rotate270).pos(Pos::new(HPos::Left, VPos::Center));
                body.draw_text(&name, &style, (x0 + cell * i as i32 + cell / 2, y0 - 6)).map_err(s)?;
            }
            let (bw, _) = body.dim_in_pixel();
            let leg = body.margin(y0, 0, (bw as i32 - 150).max(0), 0);
            draw_colorbar(&leg, legend, -limit, limit, |t| diverging(2.0 * t - 1.0, 1.0))?;
        }
        Plot::DotPlot { x_labels, y_labels, dots, legend } => {
            let x0 = 340;
            let y0 = 70;
            let (cw, rh) = (70, 24);
            for (j, l) in x_labels.iter().enumerate() {
                body.draw_text(&truncate(l, 10), &centre(12.0), (x0 + cw * j as i32 + cw / 2, y0 - 16)).map_err(s)?;
            }
            for (i, l) in y_labels.iter().enumerate() {
                let y = y0 + rh * i as i32 + rh / 2;
                body.draw_text(&truncate(l, 48), &right(11.0), (x0 - 8, y)).map_err(s)?;
                body.draw(&PathElement::new(
                    vec![(x0, y), (x0 + cw * x_labels.len() as i32, y)],
                    RGBColor(235, 235, 235),
                ))
                .map_err(s)?;
            }
            for d in dots {
                let c = (x0 + cw * d.x as i32 + cw / 2, y0 + rh * d.y as i32 + rh / 2);
                let r = (2.0 + 9.0 * d.size.clamp(0.0, 1.0).sqrt()).round() as i32;
                body.draw(&Circle::new(c, r, viridis(d.color).filled())).map_err(s)?;
                body.draw(&Circle::new(c, r, BLACK.mix(0.4).stroke_width(1))).map_err(s)?;
            }
            let lx = x0 + cw * x_labels.len() as i32 + 20;
            for (k, line) in legend.lines().enumerate() {
                body.draw_text(line, &left(12.0), (lx, y0 + 18 * k as i32)).map_err(s)?;
            }
        }
        Plot::Bars { labels, values, colors, x_label } => {
            let label_w = 230;
            let (bw, _) = body.dim_in_pixel();
            let bar_w = bw as i32 - label_w - 80;
            let max = values.iter().copied().filter(|v| v.is_finite()).fold(0f64, f64::max).max(1e-12);
            for (i, (l, &v)) in labels.iter().zip(values).enumerate() {
                let y = 10 + 30 * i as i32;
                body.draw_text(&truncate(l, 32), &right(13.0), (label_w - 8, y + 11)).map_err(s)?;
                let len = (v.max(0.0) / max * bar_w as f64).round() as i32;
                let color = colors.get(i).copied().unwrap_or(SIGNIFICANT);
                body.draw(&Rectangle::new([(label_w, y), (label_w + len.max(1), y + 22)], color.filled()))
                    .map_err(s)?;
                body.draw_text(&crate::data::fmt_num(v), &left(12.0), (label_w + len + 6, y + 11)).map_err(s)?;
            }
            let axis_y = 10 + 30 * labels.len() as i32 + 14;
            body.draw_text(x_label, &centre(13.0), (label_w + bar_w / 2, axis_y)).map_err(s)?;
        }
        Plot::Histograms { panels } => {
            let cols = 3usize;
            let rows = panels.len().div_ceil(cols).max(1);
            let cells = body.split_evenly((rows, cols));
            for (p, area) in panels.iter().zip(cells.iter()) {
                let max = p.counts.iter().copied().max().unwrap_or(1).max(1) as f64;
                let (lo, hi) = if p.hi > p.lo { (p.lo, p.hi) } else { (p.lo - 0.5, p.lo + 0.5) };
                let mut chart = ChartBuilder::on(area)
                    .caption(truncate(&p.name, 30), font(14.0))
                    .margin(6)
                    .x_label_area_size(24)
                    .y_label_area_size(44)
                    .build_cartesian_2d(lo..hi, 0f64..max * 1.05)
                    .map_err(s)?;
                chart
                    .configure_mesh()
                    .disable_mesh()
                    .x_labels(4)
                    .y_labels(3)
                    .label_style(font(10.0))
                    .y_label_formatter(&|v| crate::data::fmt_num(*v))
                    .x_label_formatter(&|v| crate::data::fmt_num(*v))
                    .draw()
                    .map_err(s)?;
                let width = (hi - lo) / p.counts.len().max(1) as f64;
                chart
                    .draw_series(p.counts.iter().enumerate().map(|(i, &c)| {
                        let a = lo + width * i as f64;
                        Rectangle::new([(a, 0.0), (a + width, c as f64)], SIGNIFICANT.filled())
                    }))
                    .map_err(s)?;
            }
        }
        Plot::Effects { labels, effects, significant, x_label } => {
            let label_w = 330;
            let (bw, _) = body.dim_in_pixel();
            let plot_w = bw as i32 - label_w - 60;
            let limit = effects.iter().filter(|v| v.is_finite()).fold(0f64, |m, v| m.max(v.abs())).max(1e-9) * 1.1;
            let zero = label_w + plot_w / 2;
            let to_x = |v: f64| zero + (v / limit * (plot_w / 2) as f64).round() as i32;
            for (i, (l, &e)) in labels.iter().zip(effects).enumerate() {
                let y = 10 + 26 * i as i32;
                body.draw_text(&truncate(l, 48), &right(12.0), (label_w - 8, y + 9)).map_err(s)?;
                if e.is_finite() {
                    let c = if significant.get(i).copied().unwrap_or(false) { SIGNIFICANT } else { NOT_SIGNIFICANT };
                    let (a, b) = if e >= 0.0 { (zero, to_x(e)) } else { (to_x(e), zero) };
                    body.draw(&Rectangle::new([(a, y), (b.max(a + 1), y + 18)], c.filled())).map_err(s)?;
                }
            }
            let axis_y = 10 + 26 * labels.len() as i32 + 4;
            body.draw(&PathElement::new(vec![(zero, 4), (zero, axis_y)], BLACK)).map_err(s)?;
            body.draw(&PathElement::new(vec![(label_w, axis_y), (label_w + plot_w, axis_y)], BLACK)).map_err(s)?;
            for t in [-1.0, -0.5, 0.0, 0.5, 1.0] {
                let x = to_x(t * limit);
                body.draw_text(&crate::data::fmt_num(t * limit), &centre(11.0), (x, axis_y + 12)).map_err(s)?;
            }
            body.draw_text(x_label, &centre(13.0), (label_w + plot_w / 2, axis_y + 32)).map_err(s)?;
            let ly = axis_y + 56;
            body.draw(&Rectangle::new([(label_w, ly - 7), (label_w + 14, ly + 7)], SIGNIFICANT.filled())).map_err(s)?;
            body.draw_text("q < 0.05", &left(12.0), (label_w + 20, ly)).map_err(s)?;
            body.draw(&Rectangle::new([(label_w + 120, ly - 7), (label_w + 134, ly + 7)], NOT_SIGNIFICANT.filled()))
                .map_err(s)?;
            body.draw_text("not significant", &left(12.0), (label_w + 140, ly)).map_err(s)?;
        }
    }
    Ok(())
}

/// Data -> pixel transform with equal aspect ratio; y grows downwards as in tissue images.
struct MapTransform {
    x0: f64,
    y0: f64,
    scale: f64,
    off: (f64, f64),
}

impl MapTransform {
    fn fit(x: &[f64], y: &[f64], outlines: &[Outline], dim: (u32, u32)) -> Self {
        let mut b = [f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY];
        let hull = outlines.iter().flat_map(|o| o.hull.iter().copied());
        for (px, py) in x.iter().copied().zip(y.iter().copied()).chain(hull) {
            if px.is_finite() && py.is_finite() {
                b = [b[0].min(px), b[1].max(px), b[2].min(py), b[3].max(py)];
            }
        }
        if !b[0].is_finite() {
            b = [0.0, 1.0, 0.0, 1.0];
        }
        let (w, h) = (dim.0 as f64 - 20.0, dim.1 as f64 - 20.0);
        let (dx, dy) = ((b[1] - b[0]).max(1e-9), (b[3] - b[2]).max(1e-9));
        let scale = (w / dx).min(h / dy);
        let off = (10.0 + (w - dx * scale) / 2.0, 10.0 + (h - dy * scale) / 2.0);
        MapTransform { x0: b[0], y0: b[2], scale, off }
    }

    fn apply(&self, x: f64, y: f64) -> Option<(i32, i32)> {
        (x.is_finite() && y.is_finite()).then(|| {
            (
                (self.off.0 + (x - self.x0) * self.scale).round() as i32,
                (self.off.1 + (y - self.y0) * self.scale).round() as i32,
            )
        })
    }

    /// Point radius so that the drawn points roughly tile the tissue.
    fn radius(&self, n: usize) -> i32 {
        let area = 640.0 * 640.0;
        ((area / n.max(1) as f64).sqrt() * 0.45).clamp(1.0, 6.0).round() as i32
    }
}

fn draw_outlines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    tf: &MapTransform,
    outlines: &[Outline],
) -> DrawResult {
    for o in outlines {
        let mut pts: Vec<(i32, i32)> = o.hull.iter().filter_map(|&(x, y)| tf.apply(x, y)).collect();
        if pts.is_empty() {
            continue;
        }
        pts.push(pts[0]);
        area.draw(&PathElement::new(pts.clone(), BLACK.stroke_width(2))).map_err(s)?;
        let top = pts.iter().min_by_key(|p| (p.1, p.0)).copied().unwrap_or((0, 0));
        area.draw_text(&o.label, &font(13.0).pos(Pos::new(HPos::Center, VPos::Bottom)), (top.0, top.1 - 3))
            .map_err(s)?;
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor)],
    outline: bool,
) -> DrawResult {
    let max_rows = 28usize;
    for (i, (name, color)) in entries.iter().take(max_rows).enumerate() {
        let y = 20 + 22 * i as i32;
        area.draw(&Rectangle::new([(10, y - 7), (24, y + 7)], color.filled())).map_err(s)?;
        area.draw_text(&truncate(name, 26), &left(13.0), (30, y)).map_err(s)?;
    }
    let mut y = 20 + 22 * entries.len().min(max_rows) as i32;
    if entries.len() > max_rows {
        area.draw_text(&format!("... {} more", entries.len() - max_rows), &left(12.0), (10, y)).map_err(s)?;
        y += 22;
    }
    if outline {
        area.draw(&PathElement::new(vec![(10, y), (24, y)], BLACK.stroke_width(2))).map_err(s)?;
        area.draw_text("resistance niche", &left(13.0), (30, y)).map_err(s)?;
    }
    Ok(())
}

fn draw_colorbar<DB: DrawingBackend, F: Fn(f64) -> RGBColor>(
    area: &DrawingArea<DB, Shift>,
    label: &str,
    lo: f64,
    hi: f64,
    color: F,
) -> DrawResult {
    let (top, height, x) = (40, 200, 14);
    area.draw_text(&truncate(label, 28), &left(13.0), (x, 18)).map_err(s)?;
    for k in 0..height {
        let t = 1.0 - k as f64 / (height - 1) as f64;
        area.draw(&Rectangle::new([(x, top + k), (x + 18, top + k + 1)], color(t).filled())).map_err(s)?;
    }
    area.draw_text(&crate::data::fmt_num(hi), &left(12.0), (x + 24, top)).map_err(s)?;
    area.draw_text(&crate::data::fmt_num((lo + hi) / 2.0), &left(12.0), (x + 24, top + height / 2)).map_err(s)?;
    area.draw_text(&crate::data::fmt_num(lo), &left(12.0), (x + 24, top + height)).map_err(s)?;
    Ok(())
}

/// The 2nd and 98th percentiles of the finite values (so a few outliers do not wash out the map).
pub fn robust_range(values: &[f64]) -> (f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.02), at(0.98));
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    }
}

/// Convex hull (Andrew's monotone chain, O(n log n)) of points, counter-clockwise, without repeats.
pub fn convex_hull(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut p: Vec<(f64, f64)> = points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let cross = |o: (f64, f64), a: (f64, f64), b: (f64, f64)| (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0);
    let mut lower: Vec<(f64, f64)> = Vec::new();
    for &q in &p {
        while lower.len() >= 2 && cross(lower[lower.len() - 2], lower[lower.len() - 1], q) <= 0.0 {
            lower.pop();
        }
        lower.push(q);
    }
    let mut upper: Vec<(f64, f64)> = Vec::new();
    for &q in p.iter().rev() {
        while upper.len() >= 2 && cross(upper[upper.len() - 2], upper[upper.len() - 1], q) <= 0.0 {
            upper.pop();
        }
        upper.push(q);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

/// Equal-width histogram of the finite values between their 0.5th and 99.5th percentiles.
pub fn histogram(name: &str, values: &[f32], bins: usize) -> Histogram {
    let v: Vec<f64> = values.iter().filter(|x| x.is_finite()).map(|&x| x as f64).collect();
    let mut sorted = v.clone();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = if sorted.is_empty() {
        (0.0, 1.0)
    } else {
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        (at(0.005), at(0.995))
    };
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
    let mut counts = vec![0u64; bins.max(1)];
    let width = (hi - lo) / counts.len() as f64;
    for x in v {
        let k = ((x - lo) / width).floor();
        let k = if k < 0.0 { 0 } else { (k as usize).min(counts.len() - 1) };
        counts[k] += 1;
    }
    Histogram { name: name.to_string(), lo, hi, counts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hull_of_a_square_with_an_inner_point() {
        let h = convex_hull(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.5, 0.5), (0.5, 0.0)]);
        assert_eq!(h, vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]);
        assert_eq!(convex_hull(&[(1.0, 1.0)]), vec![(1.0, 1.0)]);
    }

    #[test]
    fn histogram_counts_every_value() {
        let h = histogram("p", &[0.0, 0.1, 0.9, 1.0, f32::NAN], 2);
        assert_eq!(h.counts.iter().sum::<u64>(), 4);
        assert_eq!(h.counts, vec![2, 2]);
    }

    #[test]
    fn renders_valid_png_and_svg() {
        let tmp = tempfile::tempdir().unwrap();
        let fig = Figure {
            id: "t".into(),
            title: "A map".into(),
            plot: Plot::CategoryMap {
                x: vec![0.0, 1.0, 2.0],
                y: vec![0.0, 1.0, 0.5],
                codes: vec![0, 1, u32::MAX],
                names: vec!["a".into(), "b".into()],
                colors: vec![RGBColor(1, 2, 3), RGBColor(4, 5, 6)],
                outlines: vec![Outline { label: "R1".into(), hull: vec![(0.0, 0.0), (1.0, 1.0), (2.0, 0.5)] }],
            },
        };
        render(&fig, tmp.path()).unwrap();
        let png = std::fs::read(tmp.path().join("t.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = std::fs::read_to_string(tmp.path().join("t.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("A map"));
    }
}
