//! The 10x HDF5 matrix reader (Cell Ranger / Space Ranger `.h5`).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use tmescope_io::ReadOptions;

fuzz_target!(|data: &[u8]| {
    common::tolerate_guarded_panics(&["/rust-hdf5-"]);
    let (_dir, path) = common::file_with("filtered_feature_bc_matrix.h5", data);
    let _ = tmescope_io::tenx_h5::read(&path, &ReadOptions::default());
});
