#!/usr/bin/env bash
# Parity of `tmescope deconvolve` with the original RCTD (spacexr 2.2.1) on the Slide-seq vignette.
#
# Reads the GPL-3 validation pack from ../shared/validation/rctd_slideseq (never copied into this
# repository); says so and exits 0 when it is absent. Builds dataset folders from the CSVs with the
# deconv crate's `rctd_validation` example (independent of the ingest table reader), then
# runs full and doublet modes through the CLI and prints the parity table.
set -euo pipefail
cd "$(dirname "$0")/.."
VALIDATION="${VALIDATION:-../shared/validation/rctd_slideseq}"
if [ ! -d "$VALIDATION" ]; then
  echo "validation pack not found at $VALIDATION: nothing to check (it is not distributed with tmescope)"
  exit 0
fi
PROFILE="${PROFILE:-release}"
FLAG=$([ "$PROFILE" = release ] && echo --release || true)
cargo build -q $FLAG -p tmescope-cli --bin tmescope
cargo build -q $FLAG -p tmescope-deconv --example rctd_validation
BIN="target/$PROFILE/tmescope"
HELPER="target/$PROFILE/examples/rctd_validation"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# The reference's per-cell totals (meta_data nUMI) differ from its column sums; RCTD uses nUMI, so the
# reference carries it as a column and deconvolve is told to use it (--reference-umi-column nUMI).
"$HELPER" prepare "$VALIDATION" "$WORK"

start=$(date +%s.%N)
"$BIN" deconvolve --spatial "$WORK/spatial" --reference "$WORK/reference" -o "$WORK/full" \
  --reference-umi-column nUMI --mode full --seed 1
end=$(date +%s.%N)
echo "full mode, whole command (cold, no likelihood cache): $(echo "$end - $start" | bc) s"
start=$(date +%s.%N)
"$BIN" deconvolve --spatial "$WORK/spatial" --reference "$WORK/reference" -o "$WORK/doublet" \
  --reference-umi-column nUMI --mode doublet --seed 1
end=$(date +%s.%N)
echo "doublet mode, whole command (cold): $(echo "$end - $start" | bc) s"
"$HELPER" compare "$VALIDATION" "$WORK/full" "$WORK/doublet"
