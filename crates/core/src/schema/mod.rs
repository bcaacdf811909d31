//! The Arrow schema of every file the pipeline writes.
//!
//! `docs/formats.md` documents each of them column by column; the test `schemas_match_docs` in this
//! crate reads that document and fails when code and documentation disagree. Stage crates register
//! their schemas in the submodules here so the registry stays in one place.

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

pub mod deconv;
pub mod niche;
pub mod spatial;

/// Version of the file schemas; bump with every incompatible change (and document it).
pub const SCHEMA_VERSION: u32 = 1;

/// Key of the platform name in `cells.parquet` metadata.
pub const PLATFORM_KEY: &str = "tmescope.platform";
/// Key of the coordinate unit in `cells.parquet` metadata (`micrometre`, `pixel` or `none`).
pub const COORDINATE_UNIT_KEY: &str = "tmescope.coordinate_unit";

/// Shorthand for a field.
pub fn field(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

/// The fixed leading columns of `cells.parquet` (platform and metadata columns follow).
pub fn cells_fields() -> Vec<Field> {
    vec![
        field("cell_id", DataType::Utf8, false),
        field("sample", DataType::Utf8, false),
        field("x", DataType::Float64, true),
        field("y", DataType::Float64, true),
        field("total_counts", DataType::Float64, false),
        field("n_genes", DataType::UInt32, false),
    ]
}

/// Schema of `genes.parquet`.
pub fn genes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("gene_index", DataType::UInt32, false),
        field("gene_id", DataType::Utf8, false),
        field("gene_name", DataType::Utf8, false),
        field("feature_type", DataType::Utf8, false),
        field("n_cells", DataType::UInt32, false),
        field("total_counts", DataType::Float64, false),
        field("mean_log1p_cp10k", DataType::Float64, false),
        field("var_log1p_cp10k", DataType::Float64, false),
        field("mean_log1p_median", DataType::Float64, false),
        field("var_log1p_median", DataType::Float64, false),
    ]))
}

/// Schema of `counts.parquet`; `integer` selects `UInt32` counts, otherwise `Float32`.
pub fn counts_schema(integer: bool) -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("cell_index", DataType::UInt32, false),
        field("gene_index", DataType::UInt32, false),
        field("count", if integer { DataType::UInt32 } else { DataType::Float32 }, false),
    ]))
}

/// Every documented file with its fixed columns, for the documentation test. Files with variable
/// columns list only the fixed ones.
pub fn documented_schemas() -> Vec<(&'static str, SchemaRef)> {
    let mut v = vec![
        ("cells.parquet", Arc::new(Schema::new(cells_fields()))),
        ("genes.parquet", genes_schema()),
        ("counts.parquet", counts_schema(true)),
    ];
    v.extend(deconv::documented());
    v.extend(spatial::documented());
    v.extend(niche::documented());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `docs/formats.md`: sections `### <file>` followed by a table whose rows are
    /// `` | `column` | Type | ... | ``. A type cell may list alternatives separated by ` or `.
    fn documented_columns() -> std::collections::HashMap<String, Vec<(String, Vec<String>)>> {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/formats.md"))
            .expect("docs/formats.md exists");
        let mut out = std::collections::HashMap::new();
        let mut current: Option<String> = None;
        for line in doc.lines() {
            if let Some(h) = line.strip_prefix("### ") {
                current = Some(h.trim().trim_matches('`').to_string());
                continue;
            }
            let Some(file) = &current else { continue };
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() >= 4 && cells[1].starts_with('`') {
                let col = cells[1].trim_matches('`').to_string();
                let types = cells[2].split(" or ").map(|t| t.trim().to_string()).collect();
                out.entry(file.clone()).or_insert_with(Vec::new).push((col, types));
            }
        }
        out
    }

    #[test]
    fn schemas_match_docs() {
        let docs = documented_columns();
        for (file, schema) in documented_schemas() {
            let documented = docs.get(file).unwrap_or_else(|| panic!("docs/formats.md has no section `### {file}`"));
            let fixed: Vec<_> = documented.iter().take(schema.fields().len()).collect();
            assert_eq!(fixed.len(), schema.fields().len(), "{file}: the doc lists fewer columns than the code");
            for (f, (name, types)) in schema.fields().iter().zip(fixed) {
                assert_eq!(f.name(), name, "{file}: column order or name differs from docs/formats.md");
                let t = f.data_type().to_string();
                assert!(types.contains(&t), "{file}: column `{name}` is {t} in code but {types:?} in docs/formats.md");
            }
        }
    }
}
