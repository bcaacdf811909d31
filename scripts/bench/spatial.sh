#!/usr/bin/env bash
# Benchmarks the spatial stage (release build) at 100k and 1M simulated cells on the given thread count.
# Usage: scripts/bench/spatial.sh [THREADS] ; prints one line per step (wall seconds) and the peak memory.
set -euo pipefail
cd "$(dirname "$0")/../.."
threads="${1:-2}"
cargo build --release -p tmescope-spatial --example spatial_bench
bin=target/release/examples/spatial_bench
for n in 100000 1000000; do
  echo "== $n cells, $threads threads"
  extra=""
  if [ "$n" = 1000000 ]; then extra="--cooccurrence"; fi
  RAYON_NUM_THREADS="$threads" /usr/bin/time -f "wall %e s, max RSS %M KB" "$bin" "$n" $extra
done
