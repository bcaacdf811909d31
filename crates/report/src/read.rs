//! Streaming, column-projected Parquet reading for the report.
//!
//! The report only needs a few columns of each file, and per-cell files of large samples (a 1M-cell
//! sample's long-form `programs.parquet` has tens of millions of rows) must not be held as text in
//! memory. [`for_each_batch`] reads only the named columns, batch by batch; [`Interner`] turns text
//! categories into small integer codes as they stream past. Missing required columns are input errors
//! naming the file and the column (exit code 2 in the binary); unknown extra columns are never read.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use tmescope_core::{Error, Result};

/// A batch of the projected columns with typed accessors.
pub struct Batch<'a> {
    path: &'a Path,
    batch: RecordBatch,
}

impl Batch<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.batch.num_rows() == 0
    }

    /// Whether a projected column is present.
    pub fn has(&self, name: &str) -> bool {
        self.batch.column_by_name(name).is_some()
    }

    fn cast(&self, name: &str, to: &DataType) -> Result<ArrayRef> {
        let col = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| Error::input(self.path, format!("column `{name}`"), "required column is missing"))?;
        arrow::compute::cast(col, to).map_err(|e| {
            Error::input(
                self.path,
                format!("column `{name}`"),
                format!("expected {to}, found {} ({e})", col.data_type()),
            )
        })
    }

    /// Column `name` as text (numbers and dictionaries are converted); nulls are `None`.
    pub fn text(&self, name: &str) -> Result<arrow::array::StringArray> {
        Ok(self.cast(name, &DataType::Utf8)?.as_string::<i32>().clone())
    }

    /// Column `name` as `f64`; nulls become NaN.
    pub fn f64(&self, name: &str) -> Result<Vec<f64>> {
        let a = self.cast(name, &DataType::Float64)?;
        let a = a.as_primitive::<Float64Type>();
        Ok((0..a.len()).map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) }).collect())
    }

    /// Column `name` as booleans (text `true`/`1` or numbers != 0); nulls are `None`.
    pub fn bool_opt(&self, name: &str) -> Result<Vec<Option<bool>>> {
        let a = self.text(name)?;
        Ok((0..a.len())
            .map(|i| {
                (!a.is_null(i)).then(|| {
                    let v = a.value(i).trim().to_ascii_lowercase();
                    v == "true" || v == "t" || v.parse::<f64>().map(|x| x != 0.0).unwrap_or(false)
                })
            })
            .collect())
    }
}

/// The column names and key-value metadata of a Parquet file, without reading its data.
pub fn describe(path: &Path) -> Result<(Vec<String>, BTreeMap<String, String>, usize)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::file(path, format!("not a readable Parquet file ({e})")))?;
    let names = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let meta = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| kv.iter().map(|k| (k.key.clone(), k.value.clone().unwrap_or_default())).collect())
        .unwrap_or_default();
    let rows = builder.metadata().file_metadata().num_rows().max(0) as usize;
    Ok((names, meta, rows))
}

/// Streams the `required` and (when present) `optional` columns of `path` batch by batch.
///
/// A missing required column is an input error that names the file, the column and the columns found.
pub fn for_each_batch<F>(path: &Path, required: &[&str], optional: &[&str], mut f: F) -> Result<()>
where
    F: FnMut(&Batch) -> Result<()>,
{
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::file(path, format!("not a readable Parquet file ({e})")))?;
    let schema = builder.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut roots = Vec::new();
    for r in required {
        match names.iter().position(|n| n == r) {
            Some(i) => roots.push(i),
            None => {
                return Err(Error::input(
                    path,
                    format!("column `{r}`"),
                    format!("required column is missing (columns found: {})", names.join(", ")),
                ))
            }
        }
    }
    for o in optional {
        if let Some(i) = names.iter().position(|n| n == o) {
            roots.push(i);
        }
    }
    roots.sort_unstable();
    roots.dedup();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .map_err(|e| Error::file(path, format!("not a readable Parquet file ({e})")))?;
    for b in reader {
        let batch = b.map_err(|e| Error::file(path, format!("corrupt Parquet data ({e})")))?;
        f(&Batch { path, batch })?;
    }
    Ok(())
}

/// FNV-1a: a fast, deterministic hasher for the short ids and category names the report joins on
/// (the default SipHash costs about three times as much on 20M lookups, and no untrusted network input
/// reaches these tables).
#[derive(Default, Clone, Copy)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A hash map keyed with [`Fnv`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Code of a missing category.
pub const NONE: u32 = u32::MAX;

/// Turns category names into dense codes in order of first appearance.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    map: FastMap<String, u32>,
    /// The names, indexed by code.
    pub names: Vec<String>,
}

impl Interner {
    /// The code of `name`, adding it when new.
    pub fn code(&mut self, name: &str) -> u32 {
        if let Some(&c) = self.map.get(name) {
            return c;
        }
        let c = self.names.len() as u32;
        self.map.insert(name.to_string(), c);
        self.names.push(name.to_string());
        c
    }

    /// The code of `name` if known.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.map.get(name).copied()
    }
}
