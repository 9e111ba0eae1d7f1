#!/usr/bin/env bash
# Scoring throughput of the anomaly models, rows per second on one core
# (anomaly/examples/model_bench.rs; results in docs/BENCHMARKS.md, "Anomaly
# models"). The models' crates are built at opt-level 3 even in the dev
# profile (see Cargo.toml), so this needs no release build.
#   scripts/model_bench.sh [SCALE]     # SCALE multiplies the row counts
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spindle/target}"
cargo build --quiet --workspace --examples
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
taskset -c 0 "$CARGO_TARGET_DIR/debug/examples/model_bench" "${1:-1}"
