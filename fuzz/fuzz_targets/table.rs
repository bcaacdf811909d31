//! The generic CSV/TSV table reader (`tmescope ingest counts.csv`): the first byte picks the file
//! extension (`.csv`, `.tsv`, `.txt`, `.csv.gz`) and the orientation; the rest is the file.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use tmescope_io::ReadOptions;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let name = ["counts.csv", "counts.tsv", "counts.txt", "counts.csv.gz"][usize::from(pick % 4)];
    let (_dir, path) = common::file_with(name, body);
    let opts = ReadOptions { genes_in_rows: pick & 4 != 0, ..ReadOptions::default() };
    let _ = tmescope_io::table::read(&path, &opts);
    // The sample sheet reader shares the text layer.
    let _ = tmescope_io::table::read_sample_sheet(&path);
});
