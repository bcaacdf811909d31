//! Schemas of the files written by the `score`, `niches`, `communicate` and `compare` stages.
//!
//! Files with variable columns (per cell-type fractions, per program means, metadata) list only their
//! fixed leading columns here; `docs/formats.md` describes the variable ones.

use super::field;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// Columns of `programs.parquet` (long form: one row per cell and program).
pub fn programs_fields() -> Vec<Field> {
    vec![
        field("cell_id", DataType::Utf8, false),
        field("sample", DataType::Utf8, false),
        field("program", DataType::Utf8, false),
        field("score", DataType::Float64, false),
        field("smoothed_score", DataType::Float64, false),
        field("hotspot_z", DataType::Float64, true),
        field("hotspot_q", DataType::Float64, true),
    ]
}

/// Columns of `program_genes.parquet` (which genes each program used).
pub fn program_genes_fields() -> Vec<Field> {
    vec![
        field("program", DataType::Utf8, false),
        field("gene", DataType::Utf8, false),
        field("role", DataType::Utf8, false),
    ]
}

/// Fixed leading columns of `niches.parquet` (group fractions and metadata follow).
pub fn niches_fields() -> Vec<Field> {
    vec![
        field("cell_id", DataType::Utf8, false),
        field("sample", DataType::Utf8, false),
        field("niche", DataType::UInt32, false),
        field("state", DataType::Utf8, false),
        field("cell_state", DataType::Utf8, false),
        field("resistance_score", DataType::Float64, true),
        field("resistance_niche", DataType::UInt32, true),
        field("distance_to_endothelium", DataType::Float64, true),
        field("distance_to_tumor", DataType::Float64, true),
        field("distance_to_t_cell", DataType::Float64, true),
        field("interface", DataType::Boolean, false),
        field("tumor_core", DataType::Boolean, false),
    ]
}

/// Fixed leading columns of `niche_summary.parquet` (composition and program means follow).
pub fn niche_summary_fields() -> Vec<Field> {
    vec![
        field("sample", DataType::Utf8, false),
        field("kind", DataType::Utf8, false),
        field("id", DataType::UInt32, true),
        field("n_cells", DataType::UInt64, false),
        field("fraction", DataType::Float64, false),
        field("state", DataType::Utf8, true),
        field("dominant_programs", DataType::Utf8, false),
        field("evasion_flags", DataType::Utf8, false),
        field("reprogramming_axis", DataType::Utf8, false),
        field("cd8_core", DataType::Float64, true),
        field("cd8_margin", DataType::Float64, true),
        field("hypothesis", DataType::Utf8, false),
    ]
}

/// Columns of `communication.parquet`.
pub fn communication_fields() -> Vec<Field> {
    vec![
        field("sample", DataType::Utf8, false),
        field("niche", DataType::UInt32, false),
        field("sender", DataType::Utf8, false),
        field("receiver", DataType::Utf8, false),
        field("ligand", DataType::Utf8, false),
        field("receptor", DataType::Utf8, false),
        field("score", DataType::Float64, false),
        field("p", DataType::Float64, true),
        field("q", DataType::Float64, true),
        field("ligand_mean", DataType::Float64, false),
        field("receptor_mean", DataType::Float64, false),
        field("n_senders", DataType::UInt64, false),
        field("n_receivers", DataType::UInt64, false),
    ]
}

/// Columns of `abundance.parquet` (written by `compare`).
pub fn abundance_fields() -> Vec<Field> {
    vec![
        field("sample", DataType::Utf8, false),
        field("kind", DataType::Utf8, false),
        field("category", DataType::Utf8, false),
        field("n_cells", DataType::Float64, false),
        field("total", DataType::Float64, false),
        field("fraction", DataType::Float64, false),
        field("condition", DataType::Utf8, false),
        field("patient", DataType::Utf8, true),
    ]
}

/// Columns of `differential.parquet`.
pub fn differential_fields() -> Vec<Field> {
    vec![
        field("kind", DataType::Utf8, false),
        field("category", DataType::Utf8, false),
        field("by", DataType::Utf8, false),
        field("level", DataType::Utf8, false),
        field("reference", DataType::Utf8, false),
        field("n_level", DataType::UInt32, false),
        field("n_reference", DataType::UInt32, false),
        field("mean_level", DataType::Float64, false),
        field("mean_reference", DataType::Float64, false),
        field("difference", DataType::Float64, false),
        field("log2_fc", DataType::Float64, false),
        field("test", DataType::Utf8, false),
        field("n_pairs", DataType::UInt32, false),
        field("statistic", DataType::Float64, true),
        field("p", DataType::Float64, true),
        field("q", DataType::Float64, true),
    ]
}

fn s(f: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(f))
}

/// The documented files of this stage with their fixed columns.
pub fn documented() -> Vec<(&'static str, SchemaRef)> {
    vec![
        ("programs.parquet", s(programs_fields())),
        ("program_genes.parquet", s(program_genes_fields())),
        ("niches.parquet", s(niches_fields())),
        ("niche_summary.parquet", s(niche_summary_fields())),
        ("communication.parquet", s(communication_fields())),
        ("abundance.parquet", s(abundance_fields())),
        ("differential.parquet", s(differential_fields())),
    ]
}
