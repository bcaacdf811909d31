//! The edges of the Delaunay triangulation of distinct positions, triangulated in vertical strips in
//! parallel for large sections.
//!
//! Up to [`STRIP_POINTS`] positions are triangulated at once by spade's bulk loader. Beyond, the positions are
//! cut at x-quantiles into up to [`MAX_STRIPS`] strips (how many depends on the number of positions only, so
//! the triangulation is the same for any thread count), and each strip is triangulated on its own thread.
//! Merging them rests on the empty-circle property:
//!
//! 1. A triangle of a strip whose circumcircle (closed disc) lies strictly inside the strip's x-range, with
//!    a margin covering the floating-point error of the circumcentre, has no position of any other strip in
//!    its circle: it is a triangle of the whole triangulation ("certified").
//! 2. Every position on the boundary of the region the certified triangles leave uncovered (the seam) is a
//!    vertex of an uncertified triangle or on its strip's convex hull. The seam's triangles join only such
//!    positions, and their circles are empty of all positions, hence of these: they are triangles of the
//!    triangulation of the seam positions alone, which spade builds (a few per cent of the positions).
//! 3. The seam triangles are found by walking that triangulation from the edges where certified triangles
//!    border the seam, never crossing such an edge.
//!
//! Every certified triangle's circle is empty, and so is every seam triangle's; across the edges where the two
//! meet each triangle's circle excludes the other's far vertex, so the union is locally Delaunay everywhere and
//! hence a Delaunay triangulation (Delaunay's lemma). Two checks guard the merge: each border edge must be
//! an edge of the seam triangulation, and the triangle count must be `2n - 2 - h` (`h` positions on the
//! hull), that of any triangulation of all `n` positions. If either fails (degenerate input such as many
//! co-circular positions near a cut can make it fail), the positions are triangulated whole instead.
//!
//! Where positions are co-circular the Delaunay triangulation is not unique; the strips and the whole
//! triangulation may then choose different (equally valid) diagonals.

use rayon::prelude::*;
use spade::handles::{FixedFaceHandle, InnerTag};
use spade::{DelaunayTriangulation, HasPosition, Point2, Triangulation};
use std::collections::{HashMap, HashSet};
use tmescope_core::{Error, Result};

/// Positions per strip: fewer are triangulated whole.
const STRIP_POINTS: usize = 250_000;

/// The most strips: each cut adds a seam to triangulate on one thread.
const MAX_STRIPS: usize = 8;

/// A triangulation vertex: a distinct position and its index among them.
struct Vertex {
    at: Point2<f64>,
    v: u32,
}

impl HasPosition for Vertex {
    type Scalar = f64;
    fn position(&self) -> Point2<f64> {
        self.at
    }
}

/// The vertices for `points[i]`, `i` in `ids`.
fn vertices(points: &[[f64; 2]], ids: impl Iterator<Item = u32>) -> Vec<Vertex> {
    ids.map(|v| Vertex { at: Point2::new(points[v as usize][0], points[v as usize][1]), v }).collect()
}

/// spade's Delaunay triangulation of `vertices` (spade's faster bulk loader, which stores the vertices in
/// its own order: each carries its index).
fn triangulate(vertices: Vec<Vertex>) -> Result<DelaunayTriangulation<Vertex>> {
    DelaunayTriangulation::<Vertex>::bulk_load(vertices)
        .map_err(|e| Error::Usage(format!("Delaunay triangulation failed: {e:?}")))
}

/// The undirected edges `[a, b]` (each once, in no particular order) of the Delaunay triangulation of
/// `points`, which must be distinct and finite.
pub(crate) fn triangulation_edges(points: &[[f64; 2]]) -> Result<Vec<[u32; 2]>> {
    let strips = (points.len() / STRIP_POINTS).min(MAX_STRIPS);
    if strips > 1 {
        if let Some(edges) = strip_edges(points, strips)? {
            return Ok(edges);
        }
    }
    let tri = triangulate(vertices(points, 0..points.len() as u32))?;
    let id: Vec<u32> = tri.vertices().map(|h| h.data().v).collect();
    // One sequential pass over spade's edge storage, reading only each edge's two vertex indices.
    Ok(tri
        .undirected_edges()
        .map(|e| {
            let [a, b] = e.vertices();
            [id[a.fix().index()], id[b.fix().index()]]
        })
        .collect())
}

/// What one strip gives the merge.
struct Strip {
    /// Its certified triangles, counterclockwise.
    certified: Vec<[u32; 3]>,
    /// Positions the seam may use: the vertices of its other triangles and of its convex hull (with
    /// repeats).
    seam: Vec<u32>,
    /// Edges `[a, b]` of certified triangles with the seam (or the outside of the strip's hull) on their
    /// left.
    border: Vec<[u32; 2]>,
}

/// Whether the circumcircle (closed disc) of the triangle `t` lies strictly between `lo` and `hi` in x,
/// with a margin for the rounding of its centre and radius: false for near-degenerate triangles.
fn circle_inside(points: &[[f64; 2]], t: [u32; 3], lo: f64, hi: f64) -> bool {
    let [a, b, c] = t.map(|v| points[v as usize]);
    let (ax, ay, bx, by) = (a[0] - c[0], a[1] - c[1], b[0] - c[0], b[1] - c[1]);
    let (t1, t2) = (ax * by, ay * bx);
    let det = t1 - t2;
    // The determinant's condition number (infinite or NaN for collinear vertices): its relative rounding
    // error is a few epsilons times this.
    let cond = (t1.abs() + t2.abs()) / det.abs();
    if cond.is_nan() || cond >= 1e8 {
        return false;
    }
    let (a2, b2) = (ax * ax + ay * ay, bx * bx + by * by);
    let (ux, uy) = ((by * a2 - ay * b2) / (2.0 * det), (ax * b2 - bx * a2) / (2.0 * det));
    let r = ux.hypot(uy);
    let cx = c[0] + ux;
    // Rounding of the numerators and of the determinant, and of the coordinates' differences, with a
    // generous factor: a wider margin only moves triangles to the seam.
    let numerators = (by.abs() * a2 + ay.abs() * b2 + ax.abs() * b2 + bx.abs() * a2) / det.abs();
    let margin = 256.0 * f64::EPSILON * (numerators + (ux.abs() + uy.abs()) * cond + c[0].abs() + cx.abs() + r);
    cx - r - margin > lo && cx + r + margin < hi
}

/// Triangulates the positions `ids` of the strip between `lo` and `hi` in x.
fn triangulate_strip(points: &[[f64; 2]], ids: Vec<u32>, lo: f64, hi: f64) -> Result<Strip> {
    let tri = triangulate(vertices(points, ids.into_iter()))?;
    let v = |h: spade::handles::VertexHandle<Vertex>| h.data().v;
    let mut strip = Strip { certified: Vec::new(), seam: Vec::new(), border: Vec::new() };
    if tri.num_inner_faces() == 0 {
        // Collinear (or fewer than three) positions: all go to the seam.
        strip.seam.extend(tri.vertices().map(v));
        return Ok(strip);
    }
    // Inner face `f` has index `f + 1` (index 0 is the outer face).
    let faces: Vec<[u32; 3]> = tri.inner_faces().map(|f| f.vertices().map(v)).collect();
    let inside: Vec<bool> = faces.par_iter().map(|&t| circle_inside(points, t, lo, hi)).collect();
    let certified_face = |f: spade::handles::FaceHandle<spade::handles::PossiblyOuterTag, Vertex, (), (), ()>| {
        f.as_inner().is_some_and(|f| inside[f.fix().index() - 1])
    };
    for (f, face) in tri.inner_faces().enumerate() {
        if inside[f] {
            continue;
        }
        strip.seam.extend(faces[f]);
        for e in face.adjacent_edges() {
            if certified_face(e.rev().face()) {
                strip.border.push([v(e.from()), v(e.to())]);
            }
        }
    }
    // Hull edges have the outer face on their left.
    for e in tri.convex_hull() {
        strip.seam.push(v(e.from()));
        if certified_face(e.rev().face()) {
            strip.border.push([v(e.from()), v(e.to())]);
        }
    }
    strip.certified = faces.into_iter().zip(inside).filter(|f| f.1).map(|f| f.0).collect();
    Ok(strip)
}

/// [`triangulation_edges`] by `strips` strips, or `None` where the merge's checks fail (or no triangle is
/// certified) and the positions must be triangulated whole.
fn strip_edges(points: &[[f64; 2]], strips: usize) -> Result<Option<Vec<[u32; 2]>>> {
    let n = points.len();
    // Cuts at x-quantiles of every `step`-th position (distinct values only).
    let step = (n / 4096).max(1);
    let mut xs: Vec<f64> = points.iter().step_by(step).map(|p| p[0]).collect();
    xs.sort_unstable_by(f64::total_cmp);
    let mut cuts: Vec<f64> = (1..strips).map(|s| xs[s * xs.len() / strips]).collect();
    cuts.dedup();
    let mut ids: Vec<Vec<u32>> = (0..=cuts.len()).map(|_| Vec::with_capacity(n / strips + n / 16)).collect();
    for (i, p) in points.iter().enumerate() {
        ids[cuts.partition_point(|&c| c <= p[0])].push(i as u32);
    }
    let bound = |s: usize| {
        let lo = if s == 0 { f64::NEG_INFINITY } else { cuts[s - 1] };
        (lo, cuts.get(s).copied().unwrap_or(f64::INFINITY))
    };
    let parts: Vec<Strip> = ids
        .into_par_iter()
        .enumerate()
        .map(|(s, ids)| {
            let (lo, hi) = bound(s);
            triangulate_strip(points, ids, lo, hi)
        })
        .collect::<Result<_>>()?;
    let n_certified: usize = parts.iter().map(|p| p.certified.len()).sum();
    if n_certified == 0 {
        return Ok(None);
    }
    let mut seam: Vec<u32> = parts.iter().flat_map(|p| p.seam.iter().copied()).collect();
    seam.sort_unstable();
    seam.dedup();
    let tri = triangulate(vertices(points, seam.into_iter()))?;
    let handle: HashMap<u32, _> = tri.vertices().map(|h| (h.data().v, h.fix())).collect();
    let border: HashSet<[u32; 2]> = parts.iter().flat_map(|p| p.border.iter().copied()).collect();
    // Walk the seam triangulation from each border edge's seam side, never crossing a border edge.
    let mut stack: Vec<FixedFaceHandle<InnerTag>> = Vec::new();
    for &[a, b] in &border {
        let (Some(&ha), Some(&hb)) = (handle.get(&a), handle.get(&b)) else {
            return Ok(None);
        };
        let Some(e) = tri.get_edge_from_neighbors(ha, hb) else {
            return Ok(None);
        };
        stack.extend(e.face().as_inner().map(|f| f.fix()));
    }
    let mut seen = vec![false; tri.num_all_faces()];
    let mut seam_triangles: Vec<[u32; 3]> = Vec::new();
    while let Some(f) = stack.pop() {
        if std::mem::replace(&mut seen[f.index()], true) {
            continue;
        }
        let face = tri.face(f);
        seam_triangles.push(face.vertices().map(|h| h.data().v));
        for e in face.adjacent_edges() {
            if !border.contains(&[e.from().data().v, e.to().data().v]) {
                stack.extend(e.rev().face().as_inner().map(|g| g.fix()).filter(|g| !seen[g.index()]));
            }
        }
    }
    let hull = tri.convex_hull_size();
    if n_certified + seam_triangles.len() + hull + 2 != 2 * n {
        return Ok(None);
    }
    // Each edge once: from the triangle holding it as (a, b) with a < b; a hull edge whose only triangle
    // holds it as (a, b) with a > b, from the hull (whose edges run the other way round).
    let from_triangles = |t: &[u32; 3]| {
        let t = *t;
        [[t[0], t[1]], [t[1], t[2]], [t[2], t[0]]].into_iter().filter(|e| e[0] < e[1])
    };
    let mut edges: Vec<[u32; 2]> = parts
        .par_iter()
        .map(|p| &p.certified)
        .chain(rayon::iter::once(&seam_triangles))
        .flat_map_iter(|ts| ts.iter().flat_map(from_triangles))
        .collect();
    edges.extend(tri.convex_hull().map(|e| [e.to().data().v, e.from().data().v]).filter(|e| e[0] > e[1]));
    Ok(Some(edges))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn sorted(mut edges: Vec<[u32; 2]>) -> Vec<[u32; 2]> {
        edges.iter_mut().for_each(|e| e.sort_unstable());
        edges.sort_unstable();
        edges
    }

    #[test]
    fn strips_give_the_whole_triangulation() {
        // Uniform positions plus a dense cluster on a cut and a sparse outlier band: for 1 to 7 strips, the
        // merged triangulation is spade's triangulation of all positions (unique: general position).
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut pts: Vec<[f64; 2]> =
            (0..6000).map(|_| [rng.random_range(0.0..1000.0), rng.random_range(0.0..700.0)]).collect();
        pts.extend((0..1500).map(|_| [500.0 + rng.random_range(-5.0..5.0), 350.0 + rng.random_range(-5.0..5.0)]));
        pts.extend((0..40).map(|_| [rng.random_range(-3000.0..4000.0), rng.random_range(900.0..950.0)]));
        let whole = sorted(triangulation_edges(&pts).unwrap());
        assert_eq!(whole.len(), 3 * pts.len() - 3 - convex_hull_len(&pts));
        for strips in 2..8 {
            let merged = strip_edges(&pts, strips).unwrap().expect("general position merges");
            assert_eq!(sorted(merged), whole, "{strips} strips");
        }
    }

    fn convex_hull_len(pts: &[[f64; 2]]) -> usize {
        triangulate(vertices(pts, 0..pts.len() as u32)).unwrap().convex_hull_size()
    }

    #[test]
    fn strips_on_a_lattice_give_a_delaunay_triangulation() {
        // A square lattice (every unit square co-circular): whichever path is taken, each square is split by
        // exactly one diagonal and every lattice edge is present.
        let k = 60u32;
        let pts: Vec<[f64; 2]> = (0..k * k).map(|i| [(i / k) as f64, (i % k) as f64]).collect();
        for strips in [1, 3, 5] {
            let edges = if strips == 1 {
                triangulation_edges(&pts).unwrap()
            } else {
                strip_edges(&pts, strips).unwrap().unwrap_or_else(|| triangulation_edges(&pts).unwrap())
            };
            let length2 = |e: &[u32; 2]| {
                let (a, b) = (pts[e[0] as usize], pts[e[1] as usize]);
                (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
            };
            let (k, e) = (k as usize, sorted(edges));
            assert_eq!(e.windows(2).filter(|w| w[0] == w[1]).count(), 0, "{strips} strips: an edge twice");
            assert_eq!(e.iter().filter(|e| length2(e) == 1.0).count(), 2 * k * (k - 1), "{strips} strips");
            assert_eq!(e.iter().filter(|e| length2(e) == 2.0).count(), (k - 1) * (k - 1), "{strips} strips");
            assert_eq!(e.len(), 2 * k * (k - 1) + (k - 1) * (k - 1), "{strips} strips");
        }
    }

    #[test]
    fn degenerate_strips_fall_back_or_merge() {
        // Three columns of positions (cuts collapse to the few distinct x), and all positions on one line.
        let pts: Vec<[f64; 2]> =
            (0..300).map(|i| [(i % 3) as f64 * 10.0, (i / 3) as f64 + 0.01 * (i % 3) as f64]).collect();
        let whole = sorted(triangulation_edges(&pts).unwrap());
        if let Some(merged) = strip_edges(&pts, 4).unwrap() {
            assert_eq!(sorted(merged).len(), whole.len());
        }
        let line: Vec<[f64; 2]> = (0..50).map(|i| [i as f64, 2.0 * i as f64]).collect();
        assert!(strip_edges(&line, 4).unwrap().is_none());
        assert_eq!(triangulation_edges(&line).unwrap().len(), 49);
    }
}
