//! Schemas of the files written by the `graph` and `stats` stages (documented in `docs/formats.md`).

use super::field;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::sync::Arc;

/// Schema of `edges.parquet`.
pub fn edges_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("sample", DataType::Utf8, false),
        field("src", DataType::UInt32, false),
        field("dst", DataType::UInt32, false),
        field("distance", DataType::Float64, false),
        field("weight", DataType::Float64, false),
    ]))
}

/// Schema of `components.parquet` (connected components of the graph, one row per cell).
pub fn components_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("cell_id", DataType::Utf8, false),
        field("sample", DataType::Utf8, false),
        field("component", DataType::UInt32, false),
        field("component_size", DataType::UInt64, false),
    ]))
}

/// Schema of `neighborhoods.parquet` (long form: one row per cell and cell type).
pub fn neighborhoods_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("cell_id", DataType::Utf8, false),
        field("sample", DataType::Utf8, false),
        field("cell_type", DataType::Utf8, false),
        field("count", DataType::Float64, false),
        field("fraction", DataType::Float64, false),
    ]))
}

/// Schema of `nhood_enrichment.parquet`.
pub fn nhood_enrichment_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("sample", DataType::Utf8, false),
        field("type_a", DataType::Utf8, false),
        field("type_b", DataType::Utf8, false),
        field("observed", DataType::UInt64, false),
        field("expected", DataType::Float64, false),
        field("sd", DataType::Float64, false),
        field("z", DataType::Float64, false),
        field("p", DataType::Float64, false),
        field("perm_mean", DataType::Float64, false),
        field("sd_zero", DataType::Boolean, false),
        field("z_symmetric", DataType::Float64, false),
    ]))
}

/// Schema of `interaction.parquet`.
pub fn interaction_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("sample", DataType::Utf8, false),
        field("type_a", DataType::Utf8, false),
        field("type_b", DataType::Utf8, false),
        field("count", DataType::UInt64, false),
        field("fraction", DataType::Float64, false),
    ]))
}

/// Schema of `cooccurrence.parquet`.
pub fn cooccurrence_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("sample", DataType::Utf8, false),
        field("type_a", DataType::Utf8, false),
        field("type_b", DataType::Utf8, false),
        field("radius", DataType::Float64, false),
        field("ratio", DataType::Float64, false),
        field("pairs", DataType::UInt64, false),
    ]))
}

/// Schema of `autocorrelation.parquet`.
pub fn autocorrelation_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("sample", DataType::Utf8, false),
        field("feature", DataType::Utf8, false),
        field("statistic", DataType::Utf8, false),
        field("value", DataType::Float64, true),
        field("expected", DataType::Float64, false),
        field("variance", DataType::Float64, false),
        field("z", DataType::Float64, true),
        field("p", DataType::Float64, true),
        field("q", DataType::Float64, true),
        field("p_perm", DataType::Float64, true),
        field("q_perm", DataType::Float64, true),
    ]))
}

/// Schema of `hotspots.parquet` (Getis-Ord Gi*, one row per cell and feature).
pub fn hotspots_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("cell_id", DataType::Utf8, false),
        field("sample", DataType::Utf8, false),
        field("feature", DataType::Utf8, false),
        field("value", DataType::Float64, false),
        field("z", DataType::Float64, false),
        field("p", DataType::Float64, false),
        field("q", DataType::Float64, false),
    ]))
}

/// Schema of `ripley.parquet`.
pub fn ripley_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("sample", DataType::Utf8, false),
        field("cell_type", DataType::Utf8, false),
        field("radius", DataType::Float64, false),
        field("k", DataType::Float64, true),
        field("l", DataType::Float64, true),
        field("pairs", DataType::UInt64, false),
        field("n_cells", DataType::UInt64, false),
        field("area", DataType::Float64, false),
    ]))
}

/// The documented files of this stage with their fixed columns.
pub fn documented() -> Vec<(&'static str, SchemaRef)> {
    vec![
        ("edges.parquet", edges_schema()),
        ("components.parquet", components_schema()),
        ("neighborhoods.parquet", neighborhoods_schema()),
        ("nhood_enrichment.parquet", nhood_enrichment_schema()),
        ("interaction.parquet", interaction_schema()),
        ("cooccurrence.parquet", cooccurrence_schema()),
        ("autocorrelation.parquet", autocorrelation_schema()),
        ("hotspots.parquet", hotspots_schema()),
        ("ripley.parquet", ripley_schema()),
    ]
}
