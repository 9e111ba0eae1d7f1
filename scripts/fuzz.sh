#!/usr/bin/env bash
# Fuzz Spindle's input parsers for a bounded time: the JSON, line-protocol
# and OpenMetrics decoders, the job SQL parser/planner and the checkpoint
# reader (fuzz/, see docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   SECONDS per target (default 60),
#                                           every target unless named
#
# Works on stable Rust: cargo-fuzz with `--sanitizer none` passes no -Z flag
# (libFuzzer's coverage instrumentation is plain -C options), and
# fuzz/src/alloc_guard.rs stands in for the sanitizer's malloc limit.
# Installs cargo-fuzz (pinned, from crates.io) into $SPINDLE_CACHE/cargo-fuzz
# once. Builds into $SPINDLE_CACHE/fuzz-target, never the workspace's target
# folder (other RUSTFLAGS would rebuild everything there). Each target starts
# from its seeds in fuzz/corpus/<target>/ (read only) plus what earlier runs
# on this machine found ($SPINDLE_CACHE/fuzz-corpus/<target>/, where new
# inputs go). Exit 1 if any target crashed (panic, abort, allocation above
# 256 MiB, an input slower than FUZZ_TIMEOUT, RSS above 2 GB); the
# reproducer's path and the command replaying it are printed.
#
# Environment: SPINDLE_CACHE (default ~/.cache/spindle), FUZZ_TIMEOUT
# (seconds one input may take, default 30), FUZZ_JOBS (targets run side by
# side, default 1), FUZZ_RUNS (instead of SECONDS: each target runs this
# many inputs from random seed FUZZ_SEED, default 1, starting from the seeds
# alone in a fresh corpus; a repeatable run for CI, where what an earlier
# run found must not change the outcome).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
export SPINDLE_CACHE="${SPINDLE_CACHE:-$HOME/.cache/spindle}"
seconds="${1:-60}"
shift || true
timeout="${FUZZ_TIMEOUT:-30}"
jobs="${FUZZ_JOBS:-1}"
target_dir="$SPINDLE_CACHE/fuzz-target"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*" >&2; }

tools="$SPINDLE_CACHE/cargo-fuzz"
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
  step "installing cargo-fuzz $CARGO_FUZZ_VERSION into $tools"
  CARGO_TARGET_DIR="$tools/build" cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" \
    --locked --root "$tools" --force
fi
export PATH="$tools/bin:$PATH"

# Dev profile of fuzz/Cargo.toml (opt-level 1, many codegen units): the
# instrumented build of DataFusion stays the size of a debug build.
build_flags=(--dev --sanitizer none --target-dir "$target_dir")

step "cargo fuzz build (into $target_dir)"
start=$(date +%s)
cargo fuzz build "${build_flags[@]}"
echo "fuzz build: $(($(date +%s) - start)) s" >&2

if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

# Runs one target; its log goes to $logs/<target>.log.
fuzz_one() {
  local target="$1" work="$SPINDLE_CACHE/fuzz-corpus/$1"
  local dict=() seeds="fuzz/corpus/$1" budget=(-max_total_time="$seconds")
  if [ -n "${FUZZ_RUNS:-}" ]; then
    work="$logs/corpus-$target"
    budget=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}")
  fi
  mkdir -p "$work" "fuzz/artifacts/$target"
  [ -f "fuzz/dict/$target.dict" ] && dict=("-dict=fuzz/dict/$target.dict")
  [ -d "$seeds" ] || seeds=""
  # The shipped jobs seed the SQL target straight from jobs/ (no copies).
  [ "$target" = job_sql ] && seeds="$seeds jobs"
  cargo fuzz run "${build_flags[@]}" "$target" "$work" $seeds -- \
    "${budget[@]}" -timeout="$timeout" -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" >"$logs/$target.log" 2>&1
}

budget_text="${seconds}s"
[ -n "${FUZZ_RUNS:-}" ] && budget_text="$FUZZ_RUNS runs from seed ${FUZZ_SEED:-1}"
failed=()
summary=()
running=0
for target in "${targets[@]}"; do
  step "fuzzing $target for $budget_text"
  ( fuzz_one "$target" ) &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true

for target in "${targets[@]}"; do
  log="$logs/$target.log"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  if [ -n "$artifact" ] || ! grep -q '^Done [0-9]* runs' "$log"; then
    failed+=("$target")
    echo >&2
    echo "!! $target FAILED; last lines of its log:" >&2
    tail -40 "$log" >&2
    echo "!! what failed:" >&2
    grep -A3 -E 'panicked at|alloc_guard:|ERROR: libFuzzer' "$log" | head -20 >&2 || true
    if [ -n "$artifact" ]; then
      echo "!! reproducer: $artifact" >&2
      echo "!! replay:     PATH=$tools/bin:\$PATH cargo fuzz run ${build_flags[*]} $target $artifact" >&2
    fi
    summary+=("$target: CRASHED after ${runs:-?} runs")
  else
    summary+=("$target: ok, ${runs:-?} runs, ${cov:-cov: ?}")
  fi
done

echo >&2
printf 'fuzz: %s\n' "${summary[@]}"
echo "fuzz: ${#targets[@]} targets, ${#failed[@]} failed ($budget_text each)"
[ "${#failed[@]}" -eq 0 ]
