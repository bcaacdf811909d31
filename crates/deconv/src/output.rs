//! Writing a [`Deconvolution`] as `proportions.parquet`, `deconvolution_qc.parquet` and
//! `profiles.parquet` (schemas in `tmescope_core::schema::deconv`, documented in `docs/formats.md`).

use crate::pipeline::Deconvolution;
use arrow::array::{ArrayRef, BooleanArray, Float64Array, StringArray, UInt32Array};
use tmescope_core::dataset::CellTable;
use tmescope_core::output::OutputDir;
use tmescope_core::parquet_io::{arc, batch_with_schema, write_batch};
use tmescope_core::provenance::Provenance;
use tmescope_core::schema::deconv as schema;
use tmescope_core::Result;

/// File names.
pub const PROPORTIONS_FILE: &str = "proportions.parquet";
/// QC file name.
pub const QC_FILE: &str = "deconvolution_qc.parquet";
/// Profiles file name.
pub const PROFILES_FILE: &str = "profiles.parquet";

/// Writes the three files into `out`.
pub fn write(out: &OutputDir, result: &Deconvolution, cells: &CellTable, provenance: &Provenance) -> Result<()> {
    let types = &result.cell_types;
    let kv = vec![
        ("tmescope.deconvolution.mode".to_string(), format!("{:?}", result.mode).to_lowercase()),
        ("tmescope.deconvolution.sigma".to_string(), result.sigma.map(|s| format!("{s:.2}")).unwrap_or_default()),
    ];
    // proportions
    let (mut id, mut sample, mut ct, mut w, mut p) = (vec![], vec![], vec![], vec![], vec![]);
    for (i, s) in result.spots.iter().enumerate() {
        for &(t, weight, prop) in &s.proportions {
            id.push(cells.cell_id[i].as_str());
            sample.push(cells.sample[i].as_str());
            ct.push(types[t].as_str());
            w.push(weight);
            p.push(prop);
        }
    }
    let cols: Vec<ArrayRef> = vec![
        arc(StringArray::from(id)),
        arc(StringArray::from(sample)),
        arc(StringArray::from(ct)),
        arc(Float64Array::from(w)),
        arc(Float64Array::from(p)),
    ];
    write_batch(&out.path(PROPORTIONS_FILE), &batch_with_schema(schema::proportions_schema(), cols)?, provenance, &kv)?;
    // qc
    let name = |t: Option<usize>| t.map(|t| types[t].clone());
    let sp = &result.spots;
    let cols: Vec<ArrayRef> = vec![
        arc(StringArray::from_iter_values(&cells.cell_id)),
        arc(StringArray::from_iter_values(&cells.sample)),
        arc(Float64Array::from(sp.iter().map(|s| s.n_counts).collect::<Vec<_>>())),
        arc(UInt32Array::from(sp.iter().map(|s| s.n_genes_used).collect::<Vec<_>>())),
        arc(Float64Array::from(sp.iter().map(|s| s.nll).collect::<Vec<_>>())),
        arc(BooleanArray::from(sp.iter().map(|s| s.converged).collect::<Vec<_>>())),
        arc(StringArray::from(sp.iter().map(|s| s.spot_class.clone()).collect::<Vec<_>>())),
        arc(StringArray::from(sp.iter().map(|s| name(s.first_type)).collect::<Vec<_>>())),
        arc(StringArray::from(sp.iter().map(|s| name(s.second_type)).collect::<Vec<_>>())),
        arc(Float64Array::from(sp.iter().map(|s| s.margin).collect::<Vec<_>>())),
        arc(Float64Array::from(sp.iter().map(|s| s.weight_sum).collect::<Vec<_>>())),
        arc(StringArray::from(sp.iter().map(|s| s.dropped_reason.clone()).collect::<Vec<_>>())),
    ];
    write_batch(&out.path(QC_FILE), &batch_with_schema(schema::deconvolution_qc_schema(), cols)?, provenance, &kv)?;
    // profiles
    let k = types.len();
    let (mut gid, mut gname, mut role, mut ct, mut rp, mut np) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (j, (id, nm, is_reg)) in result.genes.iter().enumerate() {
        for t in 0..k {
            gid.push(id.as_str());
            gname.push(nm.as_str());
            role.push(if *is_reg { "reg" } else { "bulk" });
            ct.push(types[t].as_str());
            rp.push(result.reference_profiles[j * k + t]);
            np.push(result.normalised_profiles[j * k + t]);
        }
    }
    let cols: Vec<ArrayRef> = vec![
        arc(StringArray::from(gid)),
        arc(StringArray::from(gname)),
        arc(StringArray::from(role)),
        arc(StringArray::from(ct)),
        arc(Float64Array::from(rp)),
        arc(Float64Array::from(np)),
    ];
    write_batch(&out.path(PROFILES_FILE), &batch_with_schema(schema::profiles_schema(), cols)?, provenance, &kv)
}
