#!/usr/bin/env bash
# The project's test command (the README's second set-up command; CI runs exactly this).
# Runs every unit, integration and end-to-end test of the workspace in a debug build, then the doctests
# (nextest does not run doctests).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "cargo-nextest not found: installing it from crates.io" >&2
  cargo install cargo-nextest --locked
fi
cargo nextest run --workspace --locked --no-fail-fast "$@"
cargo test --workspace --locked --doc
