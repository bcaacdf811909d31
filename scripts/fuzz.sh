#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time (default 120 s each) with the nightly toolchain.
# Not part of CI. Seeds each target's corpus with the real fixtures from test_data/ (and the bad-input
# corpus), so libFuzzer starts from real layouts. Crashes land in fuzz/artifacts/<target>/; each one must
# become a regression test in the normal suite (see docs/reliability.md).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# FUZZ_FLAGS (default `--dev -s none`): cargo-fuzz build flags. The readers are safe Rust (`unsafe_code` is
# forbidden in the workspace), so AddressSanitizer adds little and an unoptimised build compiles polars,
# arrow and the HDF5 reader far faster on a small machine; FUZZ_FLAGS="-O -a -s none" (release with
# overflow checks, ~20 min to build, several times more executions per second) is what the long runs use.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-120}"
shift || true
targets=("$@")
read -r -a flags <<< "${FUZZ_FLAGS:---dev -s none}"
if [ ${#targets[@]} -eq 0 ]; then
    targets=(table mtx tenx_h5 h5ad parquet_table config)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

seed() { # seed TARGET FILE... : copy fixtures into the target's corpus (prefixing a byte where needed)
    local t="$1"; shift
    mkdir -p "fuzz/corpus/$t"
    for f in "$@"; do
        [ -f "$f" ] || continue
        local name; name="$(echo "$f" | tr '/' '_')"
        case "$t" in
            table|parquet_table) { printf '\x00'; cat "$f"; } > "fuzz/corpus/$t/$name" ;;
            *) cp "$f" "fuzz/corpus/$t/$name" ;;
        esac
    done
}
seed table test_data/tables/*.csv test_data/bad/tables/*.csv test_data/cosmx/r_written/*.csv \
    test_data/bad/sheets/*.csv
seed mtx test_data/visium_sr2/sample01/outs/filtered_feature_bc_matrix/matrix.mtx \
    test_data/tables/tenx_int_ids/matrix.mtx test_data/bad/mtx/*/matrix.mtx
seed tenx_h5 test_data/tenx/3.0.0/filtered_feature_bc_matrix.h5 test_data/tenx/1.2.0/filtered_gene_bc_matrices_h5.h5 \
    test_data/xenium/xenium_small/cell_feature_matrix.h5
seed h5ad test_data/anndata/archive_v*/adata.h5ad
seed parquet_table test_data/xenium/synthetic/cells.parquet
seed config test_data/bad/config/*.toml
printf 'samples = "samples.csv"\noutput = "out"\nstages = ["ingest", "graph"]\n[graph]\nk = 6\n' \
    > fuzz/corpus/config/good.toml

mkdir -p target
cd fuzz
for t in "${targets[@]}"; do
    echo "== fuzzing $t for ${secs}s"
    # -rss_limit_mb guards the machine; -max_len keeps HDF5 seeds whole.
    cargo +nightly fuzz run "${flags[@]}" "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=262144 \
        -print_final_stats=1 2>&1 | tee "../target/fuzz-$t.log" | grep -E '^(==|#[0-9]+[[:space:]]+DONE|stat::|SUMMARY|artifact)' || true
done
ls -R artifacts 2>/dev/null || echo "no crash artifacts"
