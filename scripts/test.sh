#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine:
#   installs the system packages the build needs (if missing), starts the
#   services the tests use (real Apache Kafka via scripts/kafka.sh, an S3
#   server via scripts/s3.sh, InfluxDB 1.x via scripts/influxdb.sh, Prometheus via
#   scripts/prometheus.sh), checks
#   formatting and lints, checks the container deployment in docker/
#   (scripts/check-deploy.sh: compose file, Prometheus config, Grafana
#   dashboards), then runs every test in the workspace (the dashboard's
#   browser test drives Debian's headless Chromium through chromedriver).
#
# Environment:
#   SPINDLE_CACHE      cache folder outside the clone (default ~/.cache/spindle)
#   CARGO_TARGET_DIR   build folder (default $SPINDLE_CACHE/target, reused across runs)
#   SPINDLE_SKIP_LINT  set to 1 to skip `cargo fmt --check` and clippy
#   SPINDLE_FUZZ_RUNS  inputs per fuzz target after the tests, from a fixed
#                      random seed so a run is repeatable (default 20000;
#                      0 skips; skipped by default when a test filter is given)
#   extra arguments    passed to `cargo test` (e.g. a test name filter)
set -euo pipefail
cd "$(dirname "$0")/.."

export SPINDLE_CACHE="${SPINDLE_CACHE:-$HOME/.cache/spindle}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SPINDLE_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*" >&2; }

step "system packages"
scripts/setup.sh

step "services"
kafka_was_running=0
s3_was_running=0
influxdb_was_running=0
prometheus_was_running=0
scripts/kafka.sh status >/dev/null 2>&1 && kafka_was_running=1
scripts/s3.sh status >/dev/null 2>&1 && s3_was_running=1
scripts/influxdb.sh status >/dev/null 2>&1 && influxdb_was_running=1
scripts/prometheus.sh status >/dev/null 2>&1 && prometheus_was_running=1
stop_services() {
  if [ "$kafka_was_running" = 0 ]; then scripts/kafka.sh stop >&2 || true; fi
  if [ "$s3_was_running" = 0 ]; then scripts/s3.sh stop >&2 || true; fi
  if [ "$influxdb_was_running" = 0 ]; then scripts/influxdb.sh stop >&2 || true; fi
  if [ "$prometheus_was_running" = 0 ]; then scripts/prometheus.sh stop >&2 || true; fi
}
trap stop_services EXIT
SPINDLE_TEST_KAFKA="$(scripts/kafka.sh start)"
export SPINDLE_TEST_KAFKA
echo "kafka at $SPINDLE_TEST_KAFKA" >&2
SPINDLE_TEST_S3="$(scripts/s3.sh start)"
export SPINDLE_TEST_S3
echo "s3 at $SPINDLE_TEST_S3" >&2
SPINDLE_TEST_INFLUXDB="$(scripts/influxdb.sh start)"
export SPINDLE_TEST_INFLUXDB
echo "influxdb at $SPINDLE_TEST_INFLUXDB" >&2
SPINDLE_TEST_PROMETHEUS="$(scripts/prometheus.sh start)"
SPINDLE_TEST_PROMETHEUS_TARGETS="$(scripts/prometheus.sh targets)"
export SPINDLE_TEST_PROMETHEUS SPINDLE_TEST_PROMETHEUS_TARGETS
echo "prometheus at $SPINDLE_TEST_PROMETHEUS" >&2

if [ "${SPINDLE_SKIP_LINT:-0}" != 1 ]; then
  step "cargo fmt --check"
  cargo fmt --all -- --check
  step "cargo clippy"
  cargo clippy --workspace --all-targets --quiet -- -D warnings
fi

step "cargo build"
cargo build --workspace --all-targets

log="$(mktemp)"
set +e
step "deployment files (docker/)"
scripts/check-deploy.sh 2>&1 | tee "$log"
deploy_status=${PIPESTATUS[0]}
step "cargo test"
cargo test --workspace "$@" 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" = 0 ] && [ "$deploy_status" != 0 ]; then status=$deploy_status; fi

# Every parser of outside input, fuzzed from the seeds in fuzz/corpus/ for
# a fixed number of inputs and a fixed random seed (scripts/fuzz.sh,
# docs/fuzzing.md): a crash fails the run, and the same commit fuzzes the
# same inputs each time. Open-ended fuzzing is `scripts/fuzz.sh SECONDS`.
fuzz_runs="${SPINDLE_FUZZ_RUNS:-20000}"
if [ "$#" -gt 0 ] && [ -z "${SPINDLE_FUZZ_RUNS:-}" ]; then fuzz_runs=0; fi
fuzz_status=0
if [ "$fuzz_runs" != 0 ]; then
  step "fuzzing ($fuzz_runs inputs per target)"
  FUZZ_RUNS="$fuzz_runs" scripts/fuzz.sh || fuzz_status=$?
fi
if [ "$status" = 0 ] && [ "$fuzz_status" != 0 ]; then status=$fuzz_status; fi

# One closing line over every runner (cargo's harness and the slt runner).
totals=$(awk '
  /^test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
  /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
  END { printf "%d passed, %d failed", p, f }' "$log")
rm -f "$log"
echo
echo "tests: $totals"
exit "$status"
