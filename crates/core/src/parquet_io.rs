//! Reading and writing Parquet files with provenance metadata.
//!
//! [`ParquetSink`] streams record batches to a file (bounded row groups, zstd compression (Snappy for a
//! graph's edge columns), provenance and
//! extra key-value metadata); [`Table`] reads a whole file (or streams it batch by batch) and hands out
//! typed columns with errors that name the file and the column.

use crate::provenance::{Provenance, PROVENANCE_KEY};
use crate::{Error, Result};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef, UInt32Type, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowLeafColumn, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Key of the schema version in the Parquet key-value metadata.
pub const SCHEMA_VERSION_KEY: &str = "tmescope.schema_version";

/// Rows per Parquet row group: bounded so readers can stream large files.
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// Integer columns written with Parquet's `DELTA_BINARY_PACKED` encoding instead of a dictionary: the
/// three columns of `counts.parquet` (in a file with all three). Its `cell_index` is sorted and `gene_index`
/// ascends within each cell, so their deltas pack into a few bits, and the small counts pack as well as
/// their dictionary would. A dictionary costs a hash lookup per value; at a million cells (258 million
/// entries) `ingest` spends about 1.5 s less CPU and writes a file 22% smaller, and readers decode it as
/// fast (`docs/formats.md`). A float `count` column (non-integer values) keeps the default encoding.
const DELTA_COLUMNS: [&str; 3] = ["cell_index", "gene_index", "count"];

/// A Parquet file being written batch by batch.
///
/// Rows given to [`ParquetSink::write`] are buffered up to [`ROW_GROUP_ROWS`]; each full row group is
/// encoded with its columns in parallel (rayon), then appended in column order. Large tables whose row
/// groups can be built from their index go through [`ParquetSink::write_row_groups`], which also builds and
/// encodes several groups at once. Either way the bytes do not depend on the thread count.
pub struct ParquetSink {
    encoder: RowGroupEncoder,
    writer: SerializedFileWriter<std::fs::File>,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
}

/// What encodes a row group of a [`ParquetSink`]'s file; shared by the threads encoding groups.
struct RowGroupEncoder {
    path: PathBuf,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
}

impl RowGroupEncoder {
    fn error(&self, e: parquet::errors::ParquetError) -> Error {
        write_error(&self.path, e)
    }

    /// Encodes `batches` as row group `index`, one column per task.
    fn encode(&self, index: usize, batches: &[RecordBatch]) -> Result<Vec<ArrowColumnChunk>> {
        let writers = self.factory.create_column_writers(index).map_err(|e| self.error(e))?;
        let mut leaves: Vec<Vec<ArrowLeafColumn>> = (0..writers.len()).map(|_| Vec::new()).collect();
        for b in batches {
            let mut k = 0;
            for (field, col) in self.schema.fields().iter().zip(b.columns()) {
                for leaf in compute_leaves(field, col).map_err(|e| self.error(e))? {
                    leaves[k].push(leaf);
                    k += 1;
                }
            }
        }
        writers
            .into_par_iter()
            .zip(leaves)
            .map(|(mut w, cols)| {
                for c in &cols {
                    w.write(c)?;
                }
                w.close()
            })
            .collect::<parquet::errors::Result<Vec<_>>>()
            .map_err(|e| self.error(e))
    }
}

fn write_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::Internal(format!("writing {}: {e}", path.display()))
}

impl ParquetSink {
    /// Creates `path` with `schema`, the provenance and extra key-value metadata.
    pub fn create(path: &Path, schema: SchemaRef, provenance: &Provenance, extra: &[(String, String)]) -> Result<Self> {
        let mut kv = vec![
            KeyValue::new(PROVENANCE_KEY.to_string(), provenance.to_json()?),
            KeyValue::new(SCHEMA_VERSION_KEY.to_string(), crate::schema::SCHEMA_VERSION.to_string()),
        ];
        kv.extend(extra.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())));
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid zstd level")))
            // Cell ids are distinct within a sample, and so are nearly all edge ends and distances of a
            // graph: a dictionary would cost a hash per value and compress worse than plain pages (it
            // holds up to 1 MB of distinct values before falling back; a million-cell kNN graph's
            // edges.parquet is 24% smaller without).
            .set_column_dictionary_enabled(ColumnPath::from("cell_id"), false)
            .set_column_dictionary_enabled(ColumnPath::from("src"), false)
            .set_column_dictionary_enabled(ColumnPath::from("dst"), false)
            .set_column_dictionary_enabled(ColumnPath::from("distance"), false)
            // The edge ends and distances (millions of rows, and the distances barely compress) are
            // Snappy-compressed: a million-cell kNN graph's file is 43% larger than with zstd, but it is
            // written 8% faster and read no slower. The edge ends are delta-encoded: `src` is sorted and
            // the `dst` of a row are nearby cells, so they pack into a few bits (the file 31% smaller).
            .set_column_compression(ColumnPath::from("src"), Compression::SNAPPY)
            .set_column_compression(ColumnPath::from("dst"), Compression::SNAPPY)
            .set_column_compression(ColumnPath::from("distance"), Compression::SNAPPY)
            .set_column_encoding(ColumnPath::from("src"), Encoding::DELTA_BINARY_PACKED)
            .set_column_encoding(ColumnPath::from("dst"), Encoding::DELTA_BINARY_PACKED)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_key_value_metadata(Some(kv));
        let counts_layout = DELTA_COLUMNS.iter().all(|name| schema.field_with_name(name).is_ok());
        for name in DELTA_COLUMNS {
            if counts_layout && schema.field_with_name(name).is_ok_and(|f| f.data_type().is_integer()) {
                props = props
                    .set_column_dictionary_enabled(ColumnPath::from(name), false)
                    .set_column_encoding(ColumnPath::from(name), Encoding::DELTA_BINARY_PACKED);
            }
        }
        let props = props.build();
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        // The high-level writer sets up the file (Parquet schema, embedded Arrow schema, properties); its
        // low-level parts then encode row groups column-parallel.
        let (writer, factory) = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .and_then(|w| w.into_serialized_writer())
            .map_err(|e| Error::Internal(format!("cannot start {}: {e}", path.display())))?;
        Ok(ParquetSink {
            encoder: RowGroupEncoder { path: path.to_path_buf(), factory, schema },
            writer,
            pending: vec![],
            pending_rows: 0,
        })
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut rest = batch.clone();
        while rest.num_rows() > 0 {
            let take = (ROW_GROUP_ROWS - self.pending_rows).min(rest.num_rows());
            self.pending.push(rest.slice(0, take));
            self.pending_rows += take;
            rest = rest.slice(take, rest.num_rows() - take);
            if self.pending_rows == ROW_GROUP_ROWS {
                self.flush_row_group()?;
            }
        }
        Ok(())
    }

    /// Writes `n_groups` row groups, group `g` holding the rows of `build(g)`: at most [`ROW_GROUP_ROWS`],
    /// and exactly that many in every group but the last for the row groups [`ParquetSink::write`] would
    /// cut. Rows written before are flushed first. Twice as many groups as threads are built and encoded
    /// at a time, in parallel, and appended in order, so the bytes do not depend on the thread count and
    /// the memory stays bounded: for tables of millions of rows whose groups are cheap to build from the
    /// group's index (one column of a large table per task would keep at most as many threads busy as
    /// there are columns, and the rows would be built on one).
    pub fn write_row_groups(
        &mut self,
        n_groups: usize,
        build: impl Fn(usize) -> Result<RecordBatch> + Sync,
    ) -> Result<()> {
        self.flush_row_group()?;
        let window = 2 * rayon::current_num_threads();
        for first in (0..n_groups).step_by(window) {
            let index = self.writer.flushed_row_groups().len();
            let encoder = &self.encoder;
            let encoded: Vec<Result<Vec<ArrowColumnChunk>>> = (first..(first + window).min(n_groups))
                .into_par_iter()
                .map(|g| {
                    let batch = build(g)?;
                    if batch.num_rows() > ROW_GROUP_ROWS {
                        return Err(Error::Internal(format!(
                            "row group {g} of {} has {} rows, more than {ROW_GROUP_ROWS}",
                            encoder.path.display(),
                            batch.num_rows()
                        )));
                    }
                    encoder.encode(index + g - first, std::slice::from_ref(&batch))
                })
                .collect();
            for chunks in encoded {
                self.append(chunks?)?;
            }
        }
        Ok(())
    }

    /// Appends an encoded row group to the file.
    fn append(&mut self, chunks: Vec<ArrowColumnChunk>) -> Result<()> {
        let path = &self.encoder.path;
        let mut row_group = self.writer.next_row_group().map_err(|e| write_error(path, e))?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group).map_err(|e| write_error(path, e))?;
        }
        row_group.close().map_err(|e| write_error(path, e))?;
        Ok(())
    }

    /// Encodes the buffered rows as one row group.
    fn flush_row_group(&mut self) -> Result<()> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let index = self.writer.flushed_row_groups().len();
        let chunks = self.encoder.encode(index, &self.pending)?;
        self.append(chunks)?;
        self.pending.clear();
        self.pending_rows = 0;
        Ok(())
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> Result<()> {
        self.flush_row_group()?;
        self.writer.close().map_err(|e| Error::Internal(format!("closing {}: {e}", self.encoder.path.display())))?;
        Ok(())
    }
}

/// Writes `batch` to `path` in one go.
pub fn write_batch(
    path: &Path,
    batch: &RecordBatch,
    provenance: &Provenance,
    extra: &[(String, String)],
) -> Result<()> {
    let mut sink = ParquetSink::create(path, batch.schema(), provenance, extra)?;
    sink.write(batch)?;
    sink.finish()
}

/// A Utf8 column holding each of `values` `times` times in a row (`a a b b ...`), built with exact-size
/// buffers (long-form tables repeat each cell id once per category).
pub fn repeated_strings<S: AsRef<str>>(values: &[S], times: usize) -> ArrayRef {
    let bytes = values.iter().map(|v| v.as_ref().len()).sum::<usize>() * times;
    let mut b = arrow::array::StringBuilder::with_capacity(values.len() * times, bytes);
    for v in values {
        for _ in 0..times {
            b.append_value(v.as_ref());
        }
    }
    arc(b.finish())
}

/// A Utf8 column cycling through `values` `cycles` times (`a b a b ...`), built with exact-size buffers.
pub fn cycled_strings<S: AsRef<str>>(values: &[S], cycles: usize) -> ArrayRef {
    let bytes = values.iter().map(|v| v.as_ref().len()).sum::<usize>() * cycles;
    let mut b = arrow::array::StringBuilder::with_capacity(values.len() * cycles, bytes);
    for _ in 0..cycles {
        for v in values {
            b.append_value(v.as_ref());
        }
    }
    arc(b.finish())
}

/// Builds a record batch from named columns (the schema is taken from the arrays, all nullable unless
/// the schema is given by [`batch_with_schema`]).
pub fn batch_with_schema(schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(schema, columns).map_err(|e| Error::Internal(format!("building a record batch: {e}")))
}

/// A whole Parquet file in memory, as one record batch.
#[derive(Debug, Clone)]
pub struct Table {
    /// Where it was read from.
    pub path: PathBuf,
    /// The data.
    pub batch: RecordBatch,
    /// The key-value metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Opens `path` for reading; a missing, truncated or non-Parquet file is an input error naming it.
fn open_parquet(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::file(path, "missing: expected a Parquet file here"),
        _ => Error::io(path, e),
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::file(path, format!("not a readable Parquet file ({e})")))?;
    // The reader asserts (panics) on a column chunk with a negative offset or size: check the footer first.
    for (r, rg) in builder.metadata().row_groups().iter().enumerate() {
        for col in rg.columns() {
            let start = col.dictionary_page_offset().unwrap_or(col.data_page_offset());
            if start < 0 || col.compressed_size() < 0 {
                return Err(Error::file(
                    path,
                    format!(
                        "corrupt Parquet footer: column `{}` of row group {r} has offset {start} and size {}",
                        col.column_path(),
                        col.compressed_size()
                    ),
                ));
            }
        }
    }
    Ok(builder)
}

/// The next record batch of `reader`. The parquet and arrow crates assert (panic) on some corrupt pages
/// (e.g. definition levels running past their buffer, found by fuzzing); such a panic is caught and
/// reported, like a decoding error, as corrupt data in `path`.
fn next_batch(
    reader: &mut parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    path: &Path,
) -> Result<Option<RecordBatch>> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.next())) {
        Ok(None) => Ok(None),
        Ok(Some(Ok(b))) => Ok(Some(b)),
        Ok(Some(Err(e))) => Err(Error::file(path, format!("corrupt Parquet data ({e})"))),
        Err(p) => {
            let what = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
            Err(Error::file(path, format!("corrupt Parquet data (reader failed: {})", what.unwrap_or_default())))
        }
    }
}

/// The key-value metadata of the file `builder` reads.
fn key_values(builder: &ParquetRecordBatchReaderBuilder<std::fs::File>) -> BTreeMap<String, String> {
    builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| kv.iter().map(|k| (k.key.clone(), k.value.clone().unwrap_or_default())).collect())
        .unwrap_or_default()
}

/// The number of rows and the key-value metadata of the Parquet file `path`, from its footer (no data is
/// read).
pub fn file_footer(path: &Path) -> Result<(usize, BTreeMap<String, String>)> {
    let builder = open_parquet(path)?;
    Ok((builder.metadata().file_metadata().num_rows().max(0) as usize, key_values(&builder)))
}

/// Number of rows of the Parquet file `path`, from its footer (no data is read).
pub fn file_num_rows(path: &Path) -> Result<usize> {
    Ok(file_footer(path)?.0)
}

impl Table {
    /// Reads `path`. A missing, truncated or non-Parquet file is an input error naming the file.
    pub fn read(path: &Path) -> Result<Self> {
        Self::read_projected(path, None)
    }

    /// Reads only the named columns of `path` that it has (the others are not decoded; asking a table
    /// for a missing one is then the usual error).
    pub fn read_columns(path: &Path, columns: &[&str]) -> Result<Self> {
        Self::read_projected(path, Some(columns))
    }

    fn read_projected(path: &Path, columns: Option<&[&str]>) -> Result<Self> {
        let mut builder = open_parquet(path)?;
        if let Some(columns) = columns {
            let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
            builder = builder.with_projection(mask);
        }
        let metadata = key_values(&builder);
        let mut reader = builder
            .with_batch_size(ROW_GROUP_ROWS)
            .build()
            .map_err(|e| Error::file(path, format!("not a readable Parquet file ({e})")))?;
        // The schema of the batches read (the projected columns only).
        let schema = arrow::record_batch::RecordBatchReader::schema(&reader);
        let mut batches = Vec::new();
        while let Some(b) = next_batch(&mut reader, path)? {
            batches.push(b);
        }
        let batch = arrow::compute::concat_batches(&schema, &batches)
            .map_err(|e| Error::file(path, format!("inconsistent Parquet batches ({e})")))?;
        Ok(Table { path: path.to_path_buf(), batch, metadata })
    }

    /// Streams `path` batch by batch (at most [`ROW_GROUP_ROWS`] rows each, so memory stays bounded),
    /// reading only the named columns (every one must exist), and calls `f` with each batch as a table.
    pub fn stream(path: &Path, columns: &[&str], mut f: impl FnMut(&Table) -> Result<()>) -> Result<()> {
        Self::stream_prepared(path, columns, Ok, |t| f(&t))
    }

    /// [`Table::stream`] with a first step, `prepare`, run on each batch in the reader thread (so it
    /// overlaps with `f` on the batch before), in file order; `f` takes its results in the same order.
    pub fn stream_prepared<T: Send>(
        path: &Path,
        columns: &[&str],
        mut prepare: impl FnMut(Table) -> Result<T> + Send,
        mut f: impl FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let builder = open_parquet(path)?;
        for name in columns {
            if builder.schema().column_with_name(name).is_none() {
                return Err(Error::input(path, format!("column `{name}`"), "required column is missing"));
            }
        }
        let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
        let mut reader = builder
            .with_projection(mask)
            .with_batch_size(ROW_GROUP_ROWS)
            .build()
            .map_err(|e| Error::file(path, format!("not a readable Parquet file ({e})")))?;
        // A reader thread decodes and prepares the next batch while `f` works on this one (one batch ahead,
        // so memory stays bounded); if `f` fails, dropping the receiver stops the reader.
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<T>>(1);
            scope.spawn(move || {
                while let Some(item) = next_batch(&mut reader, path).transpose() {
                    let item = item.and_then(|batch| {
                        prepare(Table { path: path.to_path_buf(), batch, metadata: BTreeMap::new() })
                    });
                    let failed = item.is_err();
                    if tx.send(item).is_err() || failed {
                        break;
                    }
                }
            });
            for item in rx {
                f(item?)?;
            }
            Ok(())
        })
    }

    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// The provenance stored in the file, if any.
    pub fn provenance(&self) -> Option<Provenance> {
        self.metadata.get(PROVENANCE_KEY).and_then(|t| Provenance::from_json(t).ok())
    }

    /// Whether the file has a column `name`.
    pub fn has(&self, name: &str) -> bool {
        self.batch.schema().column_with_name(name).is_some()
    }

    /// The raw column `name`, or an input error naming the file and the column.
    pub fn column(&self, name: &str) -> Result<&ArrayRef> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| Error::input(&self.path, format!("column `{name}`"), "required column is missing"))
    }

    fn cast(&self, name: &str, to: &DataType) -> Result<ArrayRef> {
        let col = self.column(name)?;
        arrow::compute::cast(col, to).map_err(|e| {
            Error::input(
                &self.path,
                format!("column `{name}`"),
                format!("expected {to}, found {} ({e})", col.data_type()),
            )
        })
    }

    /// Column `name` as `f64` values; nulls become NaN.
    pub fn f64(&self, name: &str) -> Result<Vec<f64>> {
        let mut v = Vec::new();
        self.extend_f64(name, &mut v)?;
        Ok(v)
    }

    /// Appends column `name` to `out` as `f64` values, as [`Table::f64`] returns them.
    pub fn extend_f64(&self, name: &str, out: &mut Vec<f64>) -> Result<()> {
        let a = self.cast(name, &DataType::Float64)?;
        let a = a.as_primitive::<Float64Type>();
        if a.null_count() == 0 {
            out.extend_from_slice(a.values());
        } else {
            out.extend((0..a.len()).map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) }));
        }
        Ok(())
    }

    /// Column `name` as `u32` values; nulls or values that do not fit are an error.
    pub fn u32(&self, name: &str) -> Result<Vec<u32>> {
        self.u32_buffer(name).map(|b| b.to_vec())
    }

    /// Column `name` as `u32` values without a copy when it is stored as `u32`; nulls are an error.
    pub fn u32_buffer(&self, name: &str) -> Result<ScalarBuffer<u32>> {
        let a = self.cast(name, &DataType::UInt32)?;
        if a.null_count() > 0 {
            return Err(Error::input(
                &self.path,
                format!("column `{name}`"),
                "expected non-negative integers, found nulls or out-of-range values",
            ));
        }
        Ok(a.as_primitive::<UInt32Type>().values().clone())
    }

    /// Column `name` as `u64` values; nulls are an error.
    pub fn u64(&self, name: &str) -> Result<Vec<u64>> {
        let a = self.cast(name, &DataType::UInt64)?;
        if a.null_count() > 0 {
            return Err(Error::input(
                &self.path,
                format!("column `{name}`"),
                "expected non-negative integers, found nulls",
            ));
        }
        Ok(a.as_primitive::<UInt64Type>().values().to_vec())
    }

    /// Column `name` as optional `i64` values.
    pub fn i64_opt(&self, name: &str) -> Result<Vec<Option<i64>>> {
        let a = self.cast(name, &DataType::Int64)?;
        let a = a.as_primitive::<Int64Type>();
        Ok((0..a.len()).map(|i| (!a.is_null(i)).then(|| a.value(i))).collect())
    }

    /// Column `name` as strings; nulls are an error.
    pub fn utf8(&self, name: &str) -> Result<Vec<String>> {
        let a = self.cast(name, &DataType::Utf8)?;
        let a = a.as_string::<i32>();
        if a.null_count() > 0 {
            return Err(Error::input(
                &self.path,
                format!("column `{name}`"),
                "expected text in every row, found nulls",
            ));
        }
        Ok((0..a.len()).map(|i| a.value(i).to_string()).collect())
    }

    /// Column `name` as optional strings.
    pub fn utf8_opt(&self, name: &str) -> Result<Vec<Option<String>>> {
        let a = self.cast(name, &DataType::Utf8)?;
        let a = a.as_string::<i32>();
        Ok((0..a.len()).map(|i| (!a.is_null(i)).then(|| a.value(i).to_string())).collect())
    }

    /// The column names in order.
    pub fn column_names(&self) -> Vec<String> {
        self.batch.schema().fields().iter().map(|f| f.name().clone()).collect()
    }
}

/// A convenience to wrap an array as [`ArrayRef`].
pub fn arc<A: Array + 'static>(a: A) -> ArrayRef {
    Arc::new(a)
}

/// The column chunks of the first row group of the Parquet file at `path` (their codecs and encodings), for
/// tests of how a file is written.
#[cfg(test)]
pub(crate) fn first_row_group_columns(path: &Path) -> Vec<parquet::file::metadata::ColumnChunkMetaData> {
    use parquet::file::reader::FileReader;
    let f = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    f.metadata().row_group(0).columns().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `test_data/bad/fuzz/<name>`, which must fail with an error naming the file; returns its path.
    fn assert_fuzz_input_refused(name: &str) -> std::path::PathBuf {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test_data/bad/fuzz").join(name);
        let e = Table::read(&path).unwrap_err().to_string();
        assert!(e.contains(name), "{e}");
        path
    }

    #[test]
    fn fuzz_regression_negative_column_offset_is_an_error() {
        // Found by the `parquet_table` fuzz target: a footer with a negative column chunk offset made the
        // parquet crate panic while reading; the footer is now checked first.
        let path = assert_fuzz_input_refused("parquet_negative_offset.parquet");
        assert!(Table::stream(&path, &[], |_| Ok(())).is_err());
    }

    #[test]
    fn sink_splits_row_groups_and_does_not_depend_on_threads() {
        use arrow::array::{StringArray, UInt32Array};
        use arrow::datatypes::{Field, Schema};
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::UInt32, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = |from: u32, n: u32| {
            let s: StringArray = (from..from + n).map(|v| (v % 7 != 0).then(|| format!("t{}", v % 13))).collect();
            RecordBatch::try_new(schema.clone(), vec![arc(UInt32Array::from_iter_values(from..from + n)), arc(s)])
                .unwrap()
        };
        let n = ROW_GROUP_ROWS as u32;
        let tmp = tempfile::tempdir().unwrap();
        let prov = Provenance::new("test", serde_json::json!({}));
        let write = |name: &str, threads: usize| {
            let path = tmp.path().join(name);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut sink = ParquetSink::create(&path, schema.clone(), &prov, &[]).unwrap();
                // Batches straddling the row-group boundary, and an empty one.
                for (from, len) in [(0, n - 5), (n - 5, 0), (n - 5, 10), (n + 5, n + 100)] {
                    sink.write(&batch(from, len)).unwrap();
                }
                sink.finish().unwrap();
            });
            std::fs::read(&path).unwrap()
        };
        let (one, two) = (write("one.parquet", 1), write("two.parquet", 2));
        assert_eq!(one, two);
        // The same rows as row groups built from their index (two windows of groups on one thread): the
        // same bytes whatever the thread count, the same table.
        let total = 2 * n + 105;
        let by_group = |name: &str, threads: usize| {
            let path = tmp.path().join(name);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut sink = ParquetSink::create(&path, schema.clone(), &prov, &[]).unwrap();
                sink.write_row_groups(3, |g| Ok(batch(g as u32 * n, (total - g as u32 * n).min(n)))).unwrap();
                sink.finish().unwrap();
            });
            std::fs::read(&path).unwrap()
        };
        assert!(by_group("g1.parquet", 1) == by_group("g3.parquet", 3));
        let same = |name: &str| {
            let t = Table::read(&tmp.path().join(name)).unwrap();
            let s: Vec<Option<String>> =
                t.column("s").unwrap().as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect();
            (t.u32("i").unwrap(), s)
        };
        assert!(same("g3.parquet") == same("one.parquet"));
        let mut sink = ParquetSink::create(&tmp.path().join("big.parquet"), schema.clone(), &prov, &[]).unwrap();
        let e = sink.write_row_groups(1, |_| Ok(batch(0, n + 1))).unwrap_err().to_string();
        assert!(e.contains("more than"), "{e}");
        let builder = open_parquet(&tmp.path().join("two.parquet")).unwrap();
        let sizes: Vec<i64> = builder.metadata().row_groups().iter().map(|rg| rg.num_rows()).collect();
        assert_eq!(sizes, vec![n as i64, n as i64, 105]);
        let t = Table::read(&tmp.path().join("two.parquet")).unwrap();
        assert_eq!(t.u32("i").unwrap(), (0..2 * n + 105).collect::<Vec<_>>());
        let s = t.column("s").unwrap().as_string::<i32>();
        assert_eq!(s.null_count(), (0..2 * n + 105).filter(|v| v % 7 == 0).count());
        assert_eq!(s.value(2 * n as usize + 1), format!("t{}", (2 * n + 1) % 13));
        assert!(t.provenance().is_some());
        // Streaming (the next batch is decoded ahead on a reader thread): every batch in order, and an error
        // from the callback stops the stream and is returned.
        let mut seen = vec![];
        Table::stream(&tmp.path().join("two.parquet"), &["i"], |b| {
            seen.extend(b.u32("i")?);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, (0..2 * n + 105).collect::<Vec<_>>());
        let mut calls = 0;
        let e = Table::stream(&tmp.path().join("two.parquet"), &["i"], |_| {
            calls += 1;
            Err(Error::Usage("stop".into()))
        })
        .unwrap_err();
        assert_eq!((calls, e.to_string().contains("stop")), (1, true));
    }

    #[test]
    fn fuzz_regression_corrupt_levels_are_an_error() {
        // Found by the `parquet_table` fuzz target (session 4): corrupt definition levels made the arrow crate
        // panic (`offset + len out of bounds`) while decoding a page; the panic is now caught per batch.
        assert_fuzz_input_refused("parquet_bad_levels.parquet");
    }
}
