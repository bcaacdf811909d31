#!/usr/bin/env bash
# The project's main job on the embedded demo data (the README's first set-up command):
# builds tmescope in release mode and runs `tmescope demo`, which simulates a small tumour cohort with a
# known microenvironment and runs every stage on it. Output goes to ./tmescope-demo (or the folder given).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-tmescope-demo}"
cargo build --release --locked -p tmescope-cli
./target/release/tmescope demo -o "$out"
