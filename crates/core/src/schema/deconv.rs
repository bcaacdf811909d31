//! Schemas of the files written by the `deconvolve` stage.

use super::field;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::sync::Arc;

/// Schema of `proportions.parquet` (long form: one row per spot and reported cell type).
pub fn proportions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("cell_id", DataType::Utf8, false),
        field("sample", DataType::Utf8, false),
        field("cell_type", DataType::Utf8, false),
        field("weight", DataType::Float64, false),
        field("proportion", DataType::Float64, false),
    ]))
}

/// Schema of `deconvolution_qc.parquet` (one row per input spot, fitted or dropped).
pub fn deconvolution_qc_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("cell_id", DataType::Utf8, false),
        field("sample", DataType::Utf8, false),
        field("n_counts", DataType::Float64, false),
        field("n_genes_used", DataType::UInt32, false),
        field("nll", DataType::Float64, true),
        field("converged", DataType::Boolean, true),
        field("spot_class", DataType::Utf8, true),
        field("first_type", DataType::Utf8, true),
        field("second_type", DataType::Utf8, true),
        field("margin", DataType::Float64, true),
        field("weight_sum", DataType::Float64, true),
        field("dropped_reason", DataType::Utf8, true),
    ]))
}

/// Schema of `profiles.parquet` (long form: one row per gene and cell type).
pub fn profiles_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("gene_id", DataType::Utf8, false),
        field("gene_name", DataType::Utf8, false),
        field("role", DataType::Utf8, false),
        field("cell_type", DataType::Utf8, false),
        field("reference_profile", DataType::Float64, false),
        field("normalised_profile", DataType::Float64, false),
    ]))
}

/// The documented files of this stage with their fixed columns.
pub fn documented() -> Vec<(&'static str, SchemaRef)> {
    vec![
        ("proportions.parquet", proportions_schema()),
        ("deconvolution_qc.parquet", deconvolution_qc_schema()),
        ("profiles.parquet", profiles_schema()),
    ]
}
