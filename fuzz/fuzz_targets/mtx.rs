//! The 10x Matrix Market folder reader: the input is split on the first two `\0` bytes into
//! `matrix.mtx`, `features.tsv` and `barcodes.tsv`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tmescope_io::ReadOptions;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let matrix = parts.next().unwrap_or_default();
    let features = parts.next().unwrap_or(b"G1\tGENE1\tGene Expression\n");
    let barcodes = parts.next().unwrap_or(b"AAAA-1\n");
    let dir = tempfile::tempdir().expect("temporary folder");
    for (name, bytes) in [("matrix.mtx", matrix), ("features.tsv", features), ("barcodes.tsv", barcodes)] {
        std::fs::write(dir.path().join(name), bytes).expect("write fuzz input");
    }
    let _ = tmescope_io::mtx::read(dir.path(), &ReadOptions::default());
});
