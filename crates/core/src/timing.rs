//! Step timings: what `-v` prints about the steps of a command.
//!
//! A stage wraps each of its steps (reading its inputs, each computation, writing its outputs) in
//! [`timed`]. With `-v` (or `TMESCOPE_LOG=info`) the command then prints one line per step on stderr, such
//! as `INFO graph: build the knn graph: 0.214 s`, which shows where a long run spends its time. The
//! benchmark scripts read these lines too (`scripts/bench/peers.py`): a step that computes on data
//! already in memory is what a peer's in-memory call is compared with.

use std::time::Instant;

/// Runs `f` and logs at info level how long it took, as `<what>: <seconds> s`.
///
/// # Examples
///
/// ```
/// let sum = tmescope_core::timing::timed("graph: add", || 1 + 2);
/// assert_eq!(sum, 3);
/// ```
pub fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    tracing::info!("{what}: {:.3} s", start.elapsed().as_secs_f64());
    out
}
