//! Colour-blind-safe colours that stay the same across figures and samples.
//!
//! Categories (cell types, niches, states) take their colour from one fixed list: the Okabe-Ito palette
//! (Okabe & Ito, "Color Universal Design", 2002; black left out because outlines are drawn in black)
//! followed by Paul Tol's "muted" scheme (Tol, "Colour schemes", SRON/EPS/TN/09-002, 2021). A [`Palette`]
//! is built once per kind of category from the sorted union of the categories of *all* samples, so a niche
//! has the same colour in every map, bar chart and sample. Beyond 16 categories the list repeats (the
//! legend still names every category).
//!
//! Continuous values use viridis (van der Walt & Smith, 2015), which is perceptually uniform and readable
//! with the common colour-vision deficiencies; signed values (z-scores, effect sizes) use ColorBrewer's
//! RdBu diverging scheme (Harrower & Brewer, 2003), which is colour-blind safe.

use plotters::style::RGBColor;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// The categorical colours in the order they are handed out (Okabe-Ito without black, then Tol muted).
pub const CATEGORICAL: [RGBColor; 16] = [
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xF0, 0xE4, 0x42), // yellow
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0x88, 0x22, 0x55), // Tol wine
    RGBColor(0x33, 0x22, 0x88), // Tol indigo
    RGBColor(0x11, 0x77, 0x33), // Tol green
    RGBColor(0x88, 0xCC, 0xEE), // Tol cyan
    RGBColor(0xDD, 0xCC, 0x77), // Tol sand
    RGBColor(0xCC, 0x66, 0x77), // Tol rose
    RGBColor(0x44, 0xAA, 0x99), // Tol teal
    RGBColor(0x99, 0x99, 0x33), // Tol olive
    RGBColor(0xAA, 0x44, 0x99), // Tol purple
];

/// Colour of missing values ("no niche", "not assigned").
pub const MISSING: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);

/// Compares category names the way a person would: numbers by value ("2" before "10"), text
/// alphabetically, numbers before text.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal).then_with(|| a.cmp(b)),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        _ => a.to_lowercase().cmp(&b.to_lowercase()).then_with(|| a.cmp(b)),
    }
}

/// A fixed category -> colour assignment shared by every figure.
#[derive(Debug, Clone, Default)]
pub struct Palette {
    order: Vec<String>,
    index: BTreeMap<String, usize>,
}

impl Palette {
    /// Builds the palette from every category seen in any sample (duplicates and order do not matter:
    /// the categories are sorted with [`natural_cmp`] first, so the assignment is the same whatever
    /// order samples are given in).
    pub fn from_categories<I, S>(categories: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut order: Vec<String> = categories.into_iter().map(|s| s.as_ref().to_string()).collect();
        order.sort_by(|a, b| natural_cmp(a, b));
        order.dedup();
        let index = order.iter().enumerate().map(|(i, c)| (c.clone(), i)).collect();
        Palette { order, index }
    }

    /// The categories in palette order.
    pub fn categories(&self) -> &[String] {
        &self.order
    }

    /// The colour of `category` (grey for a category the palette does not know).
    pub fn color(&self, category: &str) -> RGBColor {
        self.index.get(category).map(|&i| CATEGORICAL[i % CATEGORICAL.len()]).unwrap_or(MISSING)
    }

    /// The colour as CSS hex text (`#rrggbb`), for HTML legends.
    pub fn hex(&self, category: &str) -> String {
        hex(self.color(category))
    }
}

/// CSS hex text of a colour.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// Viridis anchors at 0, 1/8, ..., 1 (from matplotlib's `_cm_listed.py`, CC0).
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// ColorBrewer RdBu (11 classes) from blue (negative) to red (positive).
const RDBU: [(u8, u8, u8); 11] = [
    (5, 48, 97),
    (33, 102, 172),
    (67, 147, 195),
    (146, 197, 222),
    (209, 229, 240),
    (247, 247, 247),
    (253, 219, 199),
    (244, 165, 130),
    (214, 96, 77),
    (178, 24, 43),
    (103, 0, 31),
];

fn interpolate(anchors: &[(u8, u8, u8)], t: f64) -> RGBColor {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let pos = t * (anchors.len() - 1) as f64;
    let i = (pos.floor() as usize).min(anchors.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (anchors[i], anchors[i + 1]);
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Viridis colour for `t` in [0, 1] (clamped; NaN maps to the low end).
pub fn viridis(t: f64) -> RGBColor {
    interpolate(&VIRIDIS, t)
}

/// Diverging colour for `v` on a symmetric scale `[-limit, limit]` (white at 0).
pub fn diverging(v: f64, limit: f64) -> RGBColor {
    if !v.is_finite() {
        return MISSING;
    }
    let limit = if limit > 0.0 && limit.is_finite() { limit } else { 1.0 };
    interpolate(&RDBU, 0.5 + 0.5 * v / limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_colour_whatever_the_sample_order() {
        let a = Palette::from_categories(["tumour", "CAF", "T cell"]);
        let b = Palette::from_categories(["T cell", "tumour", "CAF", "CAF"]);
        for c in ["tumour", "CAF", "T cell"] {
            assert_eq!(a.color(c), b.color(c));
        }
        assert_eq!(a.categories(), ["CAF", "T cell", "tumour"]);
        assert_eq!(a.color("CAF"), CATEGORICAL[0]);
        assert_eq!(a.color("unknown"), MISSING);
    }

    #[test]
    fn numeric_niches_sort_by_value() {
        let p = Palette::from_categories(["10", "2", "1"]);
        assert_eq!(p.categories(), ["1", "2", "10"]);
        assert_eq!(p.hex("1"), "#e69f00");
        assert_eq!(p.hex("10"), "#009e73");
    }

    #[test]
    fn palette_colours_are_distinct_and_not_black() {
        for (i, a) in CATEGORICAL.iter().enumerate() {
            assert_ne!(*a, RGBColor(0, 0, 0));
            for b in &CATEGORICAL[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn continuous_scales_hit_their_ends() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(7.0), viridis(1.0));
        assert_eq!(diverging(0.0, 3.0), RGBColor(247, 247, 247));
        assert_eq!(diverging(-3.0, 3.0), RGBColor(5, 48, 97));
        assert_eq!(diverging(f64::NAN, 3.0), MISSING);
    }
}
