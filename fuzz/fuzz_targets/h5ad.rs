//! The AnnData `.h5ad` reader.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use tmescope_io::ReadOptions;

fuzz_target!(|data: &[u8]| {
    common::tolerate_guarded_panics(&["/rust-hdf5-"]);
    let (_dir, path) = common::file_with("adata.h5ad", data);
    let _ = tmescope_io::h5ad::read(&path, &ReadOptions::default());
});
