//! The one place that talks to the pure-Rust `rust-hdf5` crate, for the 10x and AnnData readers.
//!
//! Everything here maps the crate's errors to [`Error::Input`] naming the file and the HDF5 path, so a
//! truncated or corrupt file gives a user error (exit code 2) rather than a crash. Every call into the
//! crate goes through [`H5::guard`], which also catches a panic inside the crate on malformed bytes
//! (`std::panic::catch_unwind`, a last resort: the crate validates most structures itself, but a
//! reader of untrusted binary input should not be able to abort the whole run).
//!
//! Big arrays (the 10x `data`/`indices`/`indptr`, AnnData `X`) are read in blocks aligned to the
//! dataset's chunks, so each compressed chunk is decoded exactly once and the temporary buffer stays
//! bounded (about 4 million elements) whatever the size of the dataset: O(n) time, output-sized memory.

use crate::hdf5_chunks::{Chunked, Refused, Scratch};
use rayon::prelude::*;
use rust_hdf5::{DatatypeMessage, H5Dataset, H5File, Hdf5Error};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use tmescope_core::counts::CountValues;
use tmescope_core::dataset::Column;
use tmescope_core::{Error, Result};

/// Named columns decoded from a compound dataset.
pub(crate) type NamedColumns = Vec<(String, Column)>;

/// Elements per block when reading big 1-D arrays.
const BLOCK_ELEMENTS: usize = 1 << 22;

/// The element type of a dataset, as far as the readers care.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// Integers (`signed`, `size` bytes).
    Int { signed: bool },
    /// IEEE floats of `size` bytes.
    Float { size: u32 },
    /// Fixed- or variable-length strings.
    Str,
    /// h5py booleans (an enum over a 1-byte integer) or a 1-byte bit field.
    Bool,
    /// A compound (record) type: the legacy AnnData `obs`/`var` tables.
    Compound,
    /// Anything else (references, arrays, opaque...), described for error messages.
    Other(String),
}

impl Kind {
    fn of(dt: &DatatypeMessage) -> Kind {
        match dt {
            DatatypeMessage::FixedPoint { signed, .. } => Kind::Int { signed: *signed },
            DatatypeMessage::FloatingPoint { size, .. } => Kind::Float { size: *size },
            DatatypeMessage::FixedString { .. } | DatatypeMessage::VarLenString { .. } => Kind::Str,
            DatatypeMessage::Enum { base, .. } if base.element_size() == 1 => Kind::Bool,
            DatatypeMessage::BitField { size: 1, .. } => Kind::Bool,
            DatatypeMessage::Compound { .. } => Kind::Compound,
            other => Kind::Other(format!("{other}")),
        }
    }
}

/// What a block read of a whole-number array needs besides the block's place.
#[derive(Clone, Copy)]
struct Block<'a> {
    kind: &'a Kind,
    h5path: &'a str,
    /// The largest value accepted.
    max: u64,
    /// The array's chunks, when they are decoded here rather than by the crate.
    direct: Option<&'a Chunked>,
}

/// An HDF5 file open for reading, remembering its path for error messages.
pub(crate) struct H5 {
    file: H5File,
    path: PathBuf,
    /// File size in bytes: bounds up-front allocations, since a corrupt header can declare any length.
    bytes: usize,
}

fn describe(e: &Hdf5Error) -> String {
    match e {
        Hdf5Error::NotFound(what) => format!("`{what}` not found"),
        other => other.to_string(),
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown failure".into())
}

impl H5 {
    /// Opens `path` read-only. A file that is not HDF5, truncated or corrupt is an input error.
    pub(crate) fn open(path: &Path) -> Result<H5> {
        if !path.is_file() {
            return Err(Error::file(path, "not found (or not a file): expected an HDF5 file"));
        }
        let opened = catch_unwind(AssertUnwindSafe(|| H5File::open(path)));
        let file = match opened {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                return Err(Error::file(
                    path,
                    format!("cannot be read as HDF5 ({}); the file may be truncated or not an HDF5 file", describe(&e)),
                ))
            }
            Err(p) => {
                return Err(Error::file(
                    path,
                    format!("corrupt HDF5 file (reader failed: {}); the file may be truncated", panic_text(&*p)),
                ))
            }
        };
        let bytes = std::fs::metadata(path).map(|m| m.len() as usize).unwrap_or(0);
        Ok(H5 { file, path: path.to_path_buf(), bytes })
    }

    /// The file path, for error messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// An input error about HDF5 object `h5path` of this file.
    pub(crate) fn err(&self, h5path: &str, message: impl Into<String>) -> Error {
        Error::input(&self.path, format!("HDF5 `{h5path}`"), message)
    }

    /// Runs `f`, mapping the crate's errors and panics to input errors about `h5path`.
    fn guard<T>(&self, h5path: &str, f: impl FnOnce() -> std::result::Result<T, Hdf5Error>) -> Result<T> {
        self.guard_with(h5path, "cannot be read", f)
    }

    /// As [`H5::guard`], with `what` saying what was expected when the crate reports an error.
    fn guard_with<T>(
        &self,
        h5path: &str,
        what: &str,
        f: impl FnOnce() -> std::result::Result<T, Hdf5Error>,
    ) -> Result<T> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.err(h5path, format!("{what}: {}", describe(&e)))),
            Err(p) => Err(self.err(
                h5path,
                format!("corrupt HDF5 data (reader failed: {}); the file may be truncated", panic_text(&*p)),
            )),
        }
    }

    fn dataset(&self, h5path: &str) -> Result<H5Dataset> {
        if !self.is_dataset(h5path) {
            let what = if self.is_group(h5path) { "is a group, expected a dataset" } else { "missing dataset" };
            return Err(self.err(h5path, what));
        }
        let ds = self.guard(h5path, || self.file.dataset(h5path))?;
        // Buffers are allocated at the declared sizes (the whole dataset, and each chunk before it is
        // decompressed) before any data is checked: a corrupt header can make the process take all the
        // memory of the machine or abort. Compression cannot expand ~1,000-fold, so a dataset or a chunk
        // larger than 4,096 bytes per byte of file comes from a corrupt header.
        let sizes = catch_unwind(AssertUnwindSafe(|| (ds.shape(), ds.chunk_dims(), ds.element_size())));
        if let Ok((shape, chunk, elem)) = sizes {
            for (what, dims) in [("elements", Some(shape)), ("chunks of", chunk)] {
                let Some(dims) = dims else { continue };
                let bytes = dims.iter().try_fold(elem as u64, |acc, &d| acc.checked_mul(d as u64));
                if bytes.is_none_or(|b| b / 4096 > self.bytes as u64) {
                    return Err(self.err(
                        h5path,
                        format!(
                            "declares {what} {dims:?} x {elem} bytes in a file of {} bytes: the header is corrupt",
                            self.bytes
                        ),
                    ));
                }
            }
        }
        Ok(ds)
    }

    /// Whether `h5path` names a group (the root is `""` or `/`).
    pub(crate) fn is_group(&self, h5path: &str) -> bool {
        let p = h5path.trim_matches('/');
        if p.is_empty() {
            return true;
        }
        catch_unwind(AssertUnwindSafe(|| self.file.root_group().group(p).is_ok())).unwrap_or(false)
    }

    /// Whether `h5path` names a dataset.
    pub(crate) fn is_dataset(&self, h5path: &str) -> bool {
        let p = h5path.trim_matches('/');
        let (parent, name) = match p.rsplit_once('/') {
            Some((a, b)) => (a, b),
            None => ("", p),
        };
        self.datasets(parent).map(|names| names.iter().any(|n| n == name)).unwrap_or(false)
    }

    fn group(&self, h5path: &str) -> Result<rust_hdf5::H5Group> {
        let p = h5path.trim_matches('/');
        if p.is_empty() {
            return Ok(self.file.root_group());
        }
        self.guard(h5path, || self.file.root_group().group(p))
    }

    /// Names of the sub-groups of group `h5path`, sorted.
    pub(crate) fn groups(&self, h5path: &str) -> Result<Vec<String>> {
        let g = self.group(h5path)?;
        let mut v = self.guard(h5path, || g.group_names())?;
        v.sort();
        Ok(v)
    }

    /// Names of the datasets directly inside group `h5path`, sorted.
    pub(crate) fn datasets(&self, h5path: &str) -> Result<Vec<String>> {
        let g = self.group(h5path)?;
        let mut v = self.guard(h5path, || g.dataset_names())?;
        v.sort();
        Ok(v)
    }

    /// Shape of dataset `h5path`.
    pub(crate) fn shape(&self, h5path: &str) -> Result<Vec<usize>> {
        let ds = self.dataset(h5path)?;
        self.guard(h5path, || Ok(ds.shape()))
    }

    /// Element kind of dataset `h5path`.
    pub(crate) fn kind(&self, h5path: &str) -> Result<Kind> {
        let ds = self.dataset(h5path)?;
        Ok(Kind::of(&self.guard(h5path, || ds.datatype())?))
    }

    /// A string attribute of the group or dataset `h5path`; `None` when absent or not a string.
    pub(crate) fn attr_string(&self, h5path: &str, name: &str) -> Option<String> {
        let r = catch_unwind(AssertUnwindSafe(|| {
            if self.is_dataset(h5path) {
                let ds = self.file.dataset(h5path.trim_matches('/')).ok()?;
                if !ds.attr_names().ok()?.iter().any(|n| n == name) {
                    return None;
                }
                let a = ds.attr(name).ok()?;
                match a.datatype().ok()? {
                    DatatypeMessage::FixedString { .. } | DatatypeMessage::VarLenString { .. } => a.read_string().ok(),
                    _ => None,
                }
            } else {
                let g = self.group(h5path).ok()?;
                if !g.attr_names().ok()?.iter().any(|n| n == name) {
                    return None;
                }
                g.attr_string(name).ok()
            }
        }));
        r.ok().flatten().map(|s| s.trim_end_matches('\0').to_string())
    }

    /// Reads a string dataset (fixed or variable length; bytes that are not UTF-8 are replaced).
    pub(crate) fn read_strings(&self, h5path: &str) -> Result<Vec<String>> {
        let ds = self.dataset(h5path)?;
        let dt = self.guard(h5path, || ds.datatype())?;
        if Kind::of(&dt) != Kind::Str {
            return Err(self.err(h5path, format!("expected strings, found {dt}")));
        }
        self.guard(h5path, || ds.read_strings_lossy())
    }

    /// Reads a boolean dataset (h5py enum booleans, or integers where non-zero is true).
    pub(crate) fn read_bools(&self, h5path: &str) -> Result<Vec<bool>> {
        let ds = self.dataset(h5path)?;
        let dt = self.guard(h5path, || ds.datatype())?;
        match Kind::of(&dt) {
            Kind::Bool => {
                let raw = self.guard(h5path, || ds.read_raw_bytes())?;
                Ok(raw.iter().map(|&b| b != 0).collect())
            }
            Kind::Int { .. } => Ok(self.read_i64(h5path)?.into_iter().map(|v| v != 0).collect()),
            _ => Err(self.err(h5path, format!("expected booleans, found {dt}"))),
        }
    }

    /// Reads a small numeric dataset as `i64` (integers, booleans, or floats that are whole numbers).
    pub(crate) fn read_i64(&self, h5path: &str) -> Result<Vec<i64>> {
        let ds = self.dataset(h5path)?;
        let dt = self.guard(h5path, || ds.datatype())?;
        match Kind::of(&dt) {
            Kind::Int { .. } => self.guard(h5path, || ds.read_numeric_as::<i64>()),
            Kind::Bool => Ok(self.guard(h5path, || ds.read_raw_bytes())?.iter().map(|&b| (b != 0) as i64).collect()),
            Kind::Float { .. } => {
                let v = self.guard(h5path, || ds.read_numeric_as::<f64>())?;
                v.iter()
                    .enumerate()
                    .map(|(i, &x)| {
                        if x.fract() == 0.0 && x.abs() < 9.0e15 {
                            Ok(x as i64)
                        } else {
                            Err(self.err(h5path, format!("expected whole numbers, found {x} at element {i}")))
                        }
                    })
                    .collect()
            }
            _ => Err(self.err(h5path, format!("expected integers, found {dt}"))),
        }
    }

    /// Reads a numeric dataset (any shape, flattened row-major) as `f64`; integers and booleans converted.
    pub(crate) fn read_f64(&self, h5path: &str) -> Result<Vec<f64>> {
        let ds = self.dataset(h5path)?;
        let dt = self.guard(h5path, || ds.datatype())?;
        match Kind::of(&dt) {
            Kind::Float { .. } => self.guard(h5path, || ds.read_numeric_as::<f64>()),
            Kind::Int { signed: true } => {
                Ok(self.guard(h5path, || ds.read_numeric_as::<i64>())?.into_iter().map(|v| v as f64).collect())
            }
            Kind::Int { signed: false } => {
                Ok(self.guard(h5path, || ds.read_numeric_as::<u64>())?.into_iter().map(|v| v as f64).collect())
            }
            Kind::Bool => Ok(self.read_bools(h5path)?.into_iter().map(|b| b as u8 as f64).collect()),
            _ => Err(self.err(h5path, format!("expected numbers, found {dt}"))),
        }
    }

    /// Row blocks of a 1-D dataset: `(start, count)` pairs aligned to its chunks.
    fn blocks(&self, ds: &H5Dataset, len: usize) -> Vec<(usize, usize)> {
        let chunk = ds.chunk_dims().and_then(|c| c.first().copied()).filter(|&c| c > 0).unwrap_or(BLOCK_ELEMENTS);
        let block = chunk * (BLOCK_ELEMENTS / chunk).max(1);
        (0..len).step_by(block.max(1)).map(|s| (s, block.min(len - s))).collect()
    }

    /// Capacity to reserve for `len` elements: at most one per byte of the file (more only by growing as
    /// blocks are actually read), so a corrupt header declaring trillions of elements cannot abort the
    /// process with a failed allocation.
    pub(crate) fn capacity(&self, len: usize) -> usize {
        len.min(self.bytes.max(BLOCK_ELEMENTS))
    }

    fn one_dim(&self, h5path: &str, ds: &H5Dataset) -> Result<usize> {
        let shape = self.guard(h5path, || Ok(ds.shape()))?;
        // The declared size was checked against the file size when the dataset was opened.
        match shape.as_slice() {
            [n] => Ok(*n),
            [] => Ok(usize::from(!ds.is_null())),
            other => Err(self.err(h5path, format!("expected a one-dimensional array, found shape {other:?}"))),
        }
    }

    /// Reads a 1-D array of non-negative whole numbers (an index array) as `u64`, in bulk.
    ///
    /// Integer storage of any width is accepted, and so are floats holding whole numbers (R's rhdf5
    /// writes 10x index arrays as float64); anything else is an error naming the first bad element.
    pub(crate) fn read_index_u64(&self, h5path: &str) -> Result<Vec<u64>> {
        self.read_whole_numbers(h5path, u64::MAX, |v| v)
    }

    /// As [`H5::read_index_u64`], but every value must fit in `u32` (gene or cell indices).
    pub(crate) fn read_index_u32(&self, h5path: &str) -> Result<Vec<u32>> {
        self.read_whole_numbers(h5path, u32::MAX as u64, |v| v as u32)
    }

    fn read_whole_numbers<T: Copy + Default + Send + Sync>(
        &self,
        h5path: &str,
        max: u64,
        cast: impl Fn(u64) -> T + Sync + Send,
    ) -> Result<Vec<T>> {
        let ds = self.dataset(h5path)?;
        let dt = self.guard(h5path, || ds.datatype())?;
        let len = self.one_dim(h5path, &ds)?;
        let kind = Kind::of(&dt);
        if !matches!(kind, Kind::Int { .. } | Kind::Float { .. }) {
            return Err(self.err(h5path, format!("expected integers, found {dt}")));
        }
        let blocks = self.blocks(&ds, len);
        // Integer chunks in the layouts 10x and h5py write are decoded directly (`hdf5_chunks`).
        let direct = Chunked::of(&ds).filter(|_| matches!(kind, Kind::Int { .. }));
        let read = Block { kind: &kind, h5path, max, direct: direct.as_ref() };
        // Several blocks and more than one thread: the blocks are decompressed in parallel, each worker
        // with its own file handle (the crate's handles are single-threaded) and buffers, into their
        // places in the output. Only when the declared length is plausible for the file's size (see
        // `capacity`).
        if blocks.len() > 1 && len <= self.capacity(len) && rayon::current_num_threads() > 1 {
            let mut out = vec![T::default(); len];
            let path = self.path.as_path();
            let reopen = || (H5::open(path).and_then(|h| h.dataset(h5path).map(|d| (h, d))), Scratch::default());
            let done: Vec<Result<()>> = out
                .par_chunks_mut(blocks[0].1)
                .zip(&blocks)
                .map_init(reopen, |(opened, scratch), (slice, &(start, n))| {
                    let (h, d) = opened.as_ref().map_err(|e| Error::file(path, e.to_string()))?;
                    h.whole_numbers_block(d, &read, start, n, &cast, slice, scratch)
                })
                .collect();
            // The first bad block in file order, whatever the thread count.
            done.into_iter().collect::<Result<()>>()?;
            return Ok(out);
        }
        let mut out: Vec<T> = Vec::with_capacity(self.capacity(len));
        let mut scratch = Scratch::default();
        for (start, n) in blocks {
            let at = out.len();
            out.resize(at + n, T::default());
            self.whole_numbers_block(&ds, &read, start, n, &cast, &mut out[at..], &mut scratch)?;
        }
        Ok(out)
    }

    /// Reads elements `start..start + n` of the whole-number array `read.h5path` into `out`, refusing
    /// values above `read.max` or, for floats, values that are not non-negative whole numbers.
    #[allow(clippy::too_many_arguments)]
    fn whole_numbers_block<T>(
        &self,
        ds: &H5Dataset,
        read: &Block,
        start: usize,
        n: usize,
        cast: impl Fn(u64) -> T,
        out: &mut [T],
        scratch: &mut Scratch,
    ) -> Result<()> {
        let Block { kind, h5path, max, direct } = *read;
        if let Some(chunked) = direct {
            let put = |i: usize, v: u64| {
                if v > max {
                    return Err(format!("value {v} at element {i} is too large"));
                }
                out[i - start] = cast(v);
                Ok(())
            };
            match chunked.read(ds, start, n, scratch, put) {
                Ok(()) => return Ok(()),
                Err(Refused::Invalid(message)) => return Err(self.err(h5path, message)),
                // A chunk that is not stored whole: this block goes through the crate.
                Err(Refused::ReadByCrate) => {}
            }
        }
        let short = |got: usize| self.err(h5path, format!("elements {start}..{}: read {got}, expected {n}", start + n));
        if let Kind::Float { .. } = kind {
            let v = self.guard(h5path, || ds.read_numeric_slice_as::<f64>(&[start], &[n]))?;
            if v.len() != n {
                return Err(short(v.len()));
            }
            if let Some(i) = v.iter().position(|&x| !(x >= 0.0 && x.fract() == 0.0 && x <= max as f64)) {
                return Err(self.err(
                    h5path,
                    format!(
                        "stored as floating point, so every value must be a non-negative whole number; found {} at element {}",
                        v[i],
                        start + i
                    ),
                ));
            }
            for (o, x) in out.iter_mut().zip(v) {
                *o = cast(x as u64);
            }
        } else {
            let v = self.guard_with(h5path, "expected non-negative integers", || {
                ds.read_numeric_slice_as::<u64>(&[start], &[n])
            })?;
            if v.len() != n {
                return Err(short(v.len()));
            }
            if let Some(i) = v.iter().position(|&x| x > max) {
                return Err(self.err(h5path, format!("value {} at element {} is too large", v[i], start + i)));
            }
            for (o, x) in out.iter_mut().zip(v) {
                *o = cast(x);
            }
        }
        Ok(())
    }

    /// Reads count values (1-D) in bulk: `u32` when every value is a whole number (integer storage, or
    /// floats that happen to be whole), `f32` otherwise. Negative or non-finite values are errors.
    pub(crate) fn read_counts(&self, h5path: &str) -> Result<CountValues> {
        let ds = self.dataset(h5path)?;
        let dt = self.guard(h5path, || ds.datatype())?;
        match Kind::of(&dt) {
            // Whole counts are an array of whole numbers below 2^32, read like the index arrays.
            Kind::Int { .. } => Ok(CountValues::U32(self.read_index_u32(h5path)?)),
            Kind::Float { size } => {
                let len = self.one_dim(h5path, &ds)?;
                let blocks = self.blocks(&ds, len);
                let mut whole: Vec<u32> = Vec::with_capacity(self.capacity(len));
                let mut frac: Option<Vec<f32>> = None;
                for (start, n) in blocks {
                    let v: Vec<f64> = if size == 4 {
                        let v = self.guard(h5path, || ds.read_slice::<f32>(&[start], &[n]))?;
                        v.into_iter().map(f64::from).collect()
                    } else {
                        self.guard(h5path, || ds.read_numeric_slice_as::<f64>(&[start], &[n]))?
                    };
                    if let Some(i) = v.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
                        return Err(self.err(
                            h5path,
                            format!("counts must be finite and non-negative, found {} at element {}", v[i], start + i),
                        ));
                    }
                    if frac.is_none() && v.iter().all(|&x| x.fract() == 0.0 && x <= u32::MAX as f64) {
                        whole.extend(v.iter().map(|&x| x as u32));
                        continue;
                    }
                    let f = frac.get_or_insert_with(|| {
                        let mut f = Vec::with_capacity(self.capacity(len));
                        f.extend(whole.iter().map(|&x| x as f32));
                        f
                    });
                    whole = Vec::new();
                    f.extend(v.iter().map(|&x| x as f32));
                }
                Ok(match frac {
                    Some(f) => CountValues::F32(f),
                    None => CountValues::U32(whole),
                })
            }
            _ => Err(self.err(h5path, format!("expected numeric counts, found {dt}"))),
        }
    }

    /// Reads the `indptr`, `indices` and `data` arrays of the compressed sparse matrix in group `g`.
    ///
    /// The two big arrays are decompressed at the same time on two rayon tasks, each with its own file
    /// handle (the crate's handles are single-threaded), which nearly halves the wall time on 2 cores.
    pub(crate) fn read_sparse_parts(&self, g: &str) -> Result<(Vec<u64>, Vec<u32>, CountValues)> {
        let p = |name: &str| if g.is_empty() { name.to_string() } else { format!("{g}/{name}") };
        let (ip, ix, dp) = (p("indptr"), p("indices"), p("data"));
        for d in [&ip, &ix, &dp] {
            if !self.is_dataset(d) {
                return Err(self.err(d, "missing dataset"));
            }
        }
        let indptr = self.read_index_u64(&ip)?;
        let path = self.path.clone();
        let (indices, values) = rayon::join(
            || H5::open(&path).and_then(|f| f.read_index_u32(&ix)),
            || H5::open(&path).and_then(|f| f.read_counts(&dp)),
        );
        Ok((indptr, indices?, values?))
    }

    /// Reads rows `start..start + n` of a 2-D numeric dataset as `f64`, row-major.
    pub(crate) fn read_rows_f64(&self, h5path: &str, start: usize, n: usize, n_cols: usize) -> Result<Vec<f64>> {
        let ds = self.dataset(h5path)?;
        let dt = self.guard(h5path, || ds.datatype())?;
        let (s, c) = ([start, 0], [n, n_cols]);
        match Kind::of(&dt) {
            Kind::Float { .. } => self.guard(h5path, || ds.read_numeric_slice_as::<f64>(&s, &c)),
            Kind::Int { signed: true } => Ok(self
                .guard(h5path, || ds.read_numeric_slice_as::<i64>(&s, &c))?
                .into_iter()
                .map(|v| v as f64)
                .collect()),
            Kind::Int { signed: false } => Ok(self
                .guard(h5path, || ds.read_numeric_slice_as::<u64>(&s, &c))?
                .into_iter()
                .map(|v| v as f64)
                .collect()),
            Kind::Bool => Ok(self
                .guard(h5path, || ds.read_slice::<u8>(&s, &c))?
                .into_iter()
                .map(|v| (v != 0) as u8 as f64)
                .collect()),
            _ => Err(self.err(h5path, format!("expected a numeric matrix, found {dt}"))),
        }
    }

    /// Rows per block when reading a 2-D dataset with `n_cols` columns in bounded memory.
    pub(crate) fn row_block(&self, h5path: &str, n_cols: usize) -> usize {
        let chunk_rows = self
            .file
            .dataset(h5path.trim_matches('/'))
            .ok()
            .and_then(|d| d.chunk_dims())
            .and_then(|c| c.first().copied())
            .filter(|&c| c > 0)
            .unwrap_or(1);
        let rows = (BLOCK_ELEMENTS / n_cols.max(1)).max(1);
        (rows / chunk_rows).max(1) * chunk_rows
    }

    /// Reads a compound (record) dataset as named columns: the legacy AnnData `obs`/`var` tables.
    ///
    /// Integer, float, boolean (enum) and fixed-length string members are decoded; members of other
    /// types (e.g. array members in legacy `obsm`) are skipped and listed in the second return value.
    pub(crate) fn read_compound(&self, h5path: &str) -> Result<(NamedColumns, Vec<String>)> {
        let ds = self.dataset(h5path)?;
        let dt = self.guard(h5path, || ds.datatype())?;
        let DatatypeMessage::Compound { size, members } = &dt else {
            return Err(self.err(h5path, format!("expected a compound (record) dataset, found {dt}")));
        };
        let size = *size as usize;
        let raw = self.guard(h5path, || ds.read_raw_bytes())?;
        if size == 0 || raw.len() % size != 0 {
            return Err(self.err(h5path, "corrupt compound dataset: size does not match its records"));
        }
        let records: Vec<&[u8]> = raw.chunks_exact(size).collect();
        let mut cols = Vec::new();
        let mut skipped = Vec::new();
        for m in members {
            let off = m.offset as usize;
            let w = m.datatype.element_size() as usize;
            if off + w > size {
                return Err(self.err(h5path, format!("corrupt compound member `{}`", m.name)));
            }
            let field = |r: &&[u8]| -> Vec<u8> { r[off..off + w].to_vec() };
            let col = match &m.datatype {
                DatatypeMessage::FixedPoint { signed, byte_order, .. } if matches!(w, 1 | 2 | 4 | 8) => {
                    let be = *byte_order == rust_hdf5::ByteOrder::BigEndian;
                    Column::Int(records.iter().map(|r| Some(decode_int(&field(r), *signed, be))).collect())
                }
                DatatypeMessage::FloatingPoint { byte_order, .. } if matches!(w, 4 | 8) => {
                    let be = *byte_order == rust_hdf5::ByteOrder::BigEndian;
                    Column::Float(
                        records
                            .iter()
                            .map(|r| {
                                let mut b = field(r);
                                if be {
                                    b.reverse();
                                }
                                let x = if w == 4 {
                                    f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64
                                } else {
                                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                                };
                                (!x.is_nan()).then_some(x)
                            })
                            .collect(),
                    )
                }
                DatatypeMessage::Enum { .. } | DatatypeMessage::BitField { .. } if w == 1 => {
                    Column::Bool(records.iter().map(|r| Some(r[off] != 0)).collect())
                }
                DatatypeMessage::FixedString { .. } => Column::Text(
                    records
                        .iter()
                        .map(|r| {
                            let b = &r[off..off + w];
                            let end = b.iter().position(|&c| c == 0).unwrap_or(w);
                            Some(String::from_utf8_lossy(&b[..end]).trim_end().to_string())
                        })
                        .collect(),
                ),
                _ => {
                    skipped.push(m.name.clone());
                    continue;
                }
            };
            cols.push((m.name.clone(), col));
        }
        Ok((cols, skipped))
    }
}

/// Decodes a 1-, 2-, 4- or 8-byte integer.
fn decode_int(bytes: &[u8], signed: bool, big_endian: bool) -> i64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    if big_endian {
        for (i, &x) in bytes[..n].iter().rev().enumerate() {
            b[i] = x;
        }
    } else {
        b[..n].copy_from_slice(&bytes[..n]);
    }
    if signed && n < 8 && b[n - 1] & 0x80 != 0 {
        for x in b.iter_mut().skip(n) {
            *x = 0xff;
        }
    }
    i64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_arrays_of_several_blocks_read_the_same_on_any_thread_count() {
        // A contiguous array of 2.5 blocks (the parallel path), with a value too large in its last block.
        let dir = tempfile::tempdir().unwrap();
        let len = BLOCK_ELEMENTS * 5 / 2;
        let good: Vec<u32> = (0..len as u32).map(|i| i % 7919).collect();
        let mut bad: Vec<u64> = good.iter().map(|&v| v as u64).collect();
        bad[len - 3] = u32::MAX as u64 + 1;
        let path = dir.path().join("indices.h5");
        let f = H5File::create(&path).unwrap();
        f.new_dataset::<u32>().shape([len]).create("good").unwrap().write_raw(&good).unwrap();
        f.new_dataset::<u64>().shape([len]).create("bad").unwrap().write_raw(&bad).unwrap();
        f.close().unwrap();
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let read = |name: &str| pool.install(|| H5::open(&path).and_then(|h| h.read_index_u32(name)));
            assert_eq!(read("good").unwrap(), good, "{threads} threads");
            let err = read("bad").unwrap_err().to_string();
            assert!(err.contains(&format!("element {}", len - 3)) && err.contains("too large"), "{err}");
        }
    }

    #[test]
    fn decode_int_sign_extends_and_swaps() {
        assert_eq!(decode_int(&[0xff], true, false), -1);
        assert_eq!(decode_int(&[0xff], false, false), 255);
        assert_eq!(decode_int(&[0x01, 0x00], false, true), 256);
        assert_eq!(decode_int(&[0xfe, 0xff, 0xff, 0xff], true, false), -2);
    }

    #[test]
    fn garbage_is_an_input_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("bad.h5");
        std::fs::write(&p, b"\x89HDF\r\n\x1a\nthis is not really hdf5 at all").unwrap();
        let e = H5::open(&p).err().expect("garbage must not open");
        assert!(e.is_user_error());
        assert!(e.to_string().contains("bad.h5"), "{e}");
    }
}
