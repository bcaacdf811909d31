#!/usr/bin/env bash
# Deconvolution benchmark (release build): accuracy on simulated spots for the Spotless abundance
# patterns (rctd vs nnls), and speed of full and doublet modes on 100,000 simulated spots x 20 types.
#
# Usage: scripts/bench/deconvolve.sh [--threads N] [--spots N] [--speed-spots N]
# The reference for the accuracy table is the RCTD validation reference (19 cerebellum types) when
# ../shared/validation is present, else a synthetic 10-type reference.
set -euo pipefail
cd "$(dirname "$0")/../.."
REF="../shared/validation/rctd_slideseq/reference"
ARGS=("$@")
if [ -d "$REF" ]; then ARGS+=(--reference-csv "$REF"); fi
cargo build -q --release -p tmescope-deconv --example bench
/usr/bin/time -v target/release/examples/bench "${ARGS[@]}" 2> >(grep -E "Maximum resident|Elapsed|s, sigma|simulated" >&2)
