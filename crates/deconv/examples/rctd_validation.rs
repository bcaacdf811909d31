//! Helper of `scripts/validate_rctd.sh`: turns the RCTD validation CSVs into dataset folders and
//! compares the `tmescope deconvolve` outputs with the original RCTD results.
//!
//! `rctd_validation prepare <validation_dir> <out_dir>` writes `<out_dir>/spatial` and
//! `<out_dir>/reference` (labels in `cell_type`, RCTD's per-cell totals in `nUMI`).
//! `rctd_validation compare <validation_dir> <full_out> <doublet_out>` prints the parity table and
//! exits 1 when a check fails.
//! `rctd_validation time <validation_dir>` times the library calls (full mode with the sigma search from
//! a cold likelihood cache, then full and doublet modes at the chosen sigma) and prints the doublet classes.

use std::collections::HashMap;
use std::path::Path;
use tmescope_core::parquet_io::Table;
use tmescope_core::provenance::Provenance;

#[path = "../tests/common/validation_pack.rs"]
mod validation_pack;
use validation_pack::{named_rows, validation_datasets};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("prepare") => {
            let (v, out) = (Path::new(&a[2]), Path::new(&a[3]));
            let prov = Provenance::new("validation-prepare", serde_json::json!({}));
            let (spatial, reference) = validation_datasets(v);
            spatial.write(&out.join("spatial"), &prov).expect("write spatial");
            reference.write(&out.join("reference"), &prov).expect("write reference");
        }
        Some("time") => {
            let v = Path::new(&a[2]);
            let t0 = std::time::Instant::now();
            let (spatial, reference) = validation_datasets(v);
            let params = tmescope_deconv::Params {
                reference_umi_column: Some("nUMI".into()),
                mode: Some(tmescope_deconv::Mode::Full),
                ..Default::default()
            };
            let t_read = t0.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let prepared =
                tmescope_deconv::prepare_reference(&reference, Path::new("reference"), &params).expect("reference");
            let mut cache = tmescope_deconv::likelihood::TableCache::new();
            let run = |p: &tmescope_deconv::Params, cache: &mut tmescope_deconv::likelihood::TableCache| {
                tmescope_deconv::deconvolve(
                    &spatial,
                    Path::new("spatial"),
                    &prepared,
                    &reference.genes,
                    p,
                    cache,
                    &|_| {},
                )
                .expect("deconvolve")
            };
            let full = run(&params, &mut cache);
            let t_cold = t.elapsed().as_secs_f64();
            let fixed = tmescope_deconv::Params { sigma: full.sigma, ..params.clone() };
            let t = std::time::Instant::now();
            let _ = run(&fixed, &mut cache);
            let t_full = t.elapsed().as_secs_f64();
            let dbl_params = tmescope_deconv::Params { mode: Some(tmescope_deconv::Mode::Doublet), ..fixed.clone() };
            let t = std::time::Instant::now();
            let dbl = run(&dbl_params, &mut cache);
            let t_dbl = t.elapsed().as_secs_f64();
            let mut classes: std::collections::BTreeMap<String, usize> = Default::default();
            for s in &dbl.spots {
                if let Some(c) = &s.spot_class {
                    *classes.entry(c.clone()).or_default() += 1;
                }
            }
            println!(
                "read CSVs {t_read:.2} s; full mode with sigma search, cold: {t_cold:.3} s ({} tables, sigma {:?}); \
                 full at fixed sigma {t_full:.3} s; doublet at fixed sigma {t_dbl:.3} s ({:.2}x); classes {classes:?}",
                cache.computed,
                full.sigma,
                t_dbl / t_full
            );
        }
        Some("compare") => {
            let (v, full, dbl) = (Path::new(&a[2]), Path::new(&a[3]), Path::new(&a[4]));
            let mut ok = true;
            let mut check = |name: &str, ours: String, theirs: String, pass: bool| {
                println!("| {name} | {ours} | {theirs} | {} |", if pass { "ok" } else { "FAIL" });
                ok &= pass;
            };
            println!("| check | tmescope | RCTD | |\n|---|---|---|---|");
            let qc = Table::read(&full.join("deconvolution_qc.parquet")).expect("qc");
            let ids = qc.utf8("cell_id").unwrap();
            let dropped = qc.utf8_opt("dropped_reason").unwrap();
            let (wh, wref) = named_rows(&v.join("rctd_output/weights_full_normalized.csv"));
            let kept: Vec<&String> = ids.iter().zip(&dropped).filter(|(_, d)| d.is_none()).map(|(c, _)| c).collect();
            let same = kept.len() == wref.len() && kept.iter().all(|c| wref.contains_key(*c));
            check("beads kept", kept.len().to_string(), wref.len().to_string(), same);
            let prof = Table::read(&full.join("profiles.parquet")).expect("profiles");
            let roles = prof.utf8("role").unwrap();
            let genes = prof.utf8("gene_name").unwrap();
            let mut reg = std::collections::BTreeSet::new();
            let mut bulk = std::collections::BTreeSet::new();
            for (g, r) in genes.iter().zip(&roles) {
                bulk.insert(g.clone());
                if r == "reg" {
                    reg.insert(g.clone());
                }
            }
            check(
                "reg / bulk genes",
                format!("{} / {}", reg.len(), bulk.len()),
                "313 / 340".into(),
                reg.len() == 313 && bulk.len() == 340,
            );
            let p = qc.provenance().expect("provenance").parameters;
            let path: Vec<f64> =
                p["sigma_path"].as_array().unwrap().iter().map(|s| s["sigma"].as_f64().unwrap()).collect();
            let nll: Vec<f64> =
                p["sigma_path"].as_array().unwrap().iter().map(|s| s["nll"].as_f64().unwrap()).collect();
            let sigma = p["sigma_chosen"].as_f64().unwrap();
            let path_s =
                path.iter().chain(std::iter::once(&sigma)).map(|s| format!("{s:.2}")).collect::<Vec<_>>().join(" -> ");
            check("sigma path", path_s.clone(), "1.00 -> 0.84 -> 0.84".into(), path_s == "1.00 -> 0.84 -> 0.84");
            let rctd_nll = [1970.41846750024, 1964.498838749];
            let rel: Vec<f64> = nll.iter().zip(rctd_nll).map(|(a, b)| (a - b).abs() / b).collect();
            check(
                "NLL per round",
                nll.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", "),
                "1970.418, 1964.499".into(),
                rel.len() == 2 && rel.iter().all(|r| *r < 1e-3),
            );
            let props = Table::read(&full.join("proportions.parquet")).expect("proportions");
            let (pid, pct, pp) =
                (props.utf8("cell_id").unwrap(), props.utf8("cell_type").unwrap(), props.f64("proportion").unwrap());
            let col: HashMap<&str, usize> = wh[1..].iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
            let mut max_diff = 0.0f64;
            for i in 0..pid.len() {
                let theirs: f64 = wref[&pid[i]][col[pct[i].as_str()]].parse().unwrap();
                max_diff = max_diff.max((pp[i] - theirs).abs());
            }
            check("full weights max |diff|", format!("{max_diff:.4}"), "< 0.02".into(), max_diff < 0.02);
            let dq = Table::read(&dbl.join("deconvolution_qc.parquet")).expect("doublet qc");
            let (did, dclass) = (dq.utf8("cell_id").unwrap(), dq.utf8_opt("spot_class").unwrap());
            let (dh, dref) = named_rows(&v.join("rctd_output/doublet_results.csv"));
            let ci = dh[1..].iter().position(|h| h == "spot_class").unwrap();
            let mut same = 0;
            let mut total = 0;
            for (id, c) in did.iter().zip(&dclass) {
                if let (Some(r), Some(c)) = (dref.get(id), c) {
                    total += 1;
                    same += (r[ci] == *c) as usize;
                }
            }
            check(
                "doublet classes identical",
                format!("{same}/{total}"),
                format!("{}", dref.len()),
                same == dref.len() && total == dref.len(),
            );
            std::process::exit(if ok { 0 } else { 1 });
        }
        _ => {
            eprintln!("usage: rctd_validation prepare <validation_dir> <out_dir> | compare <validation_dir> <full_out> <doublet_out>");
            std::process::exit(2);
        }
    }
}
