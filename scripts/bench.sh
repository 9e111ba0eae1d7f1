#!/usr/bin/env bash
# scripts/bench.sh — Spindle's benchmarks, each measured next to a reference tool, written
# into docs/BENCHMARKS.md (one marked section per benchmark; the others are left alone).
#
#   scripts/bench.sh all [OPTIONS]          every section, in order
#   scripts/bench.sh SECTION... [OPTIONS]   only these sections
#   scripts/bench.sh --help
#
# Sections:
#   simulator   `spindle simulate`: generation on one core (JSON, influx-lp), and producing
#               to the local Kafka broker vs kafka-producer-perf-test on the same records
#   engine      `spindle run jobs/factory_features.sql` from the local broker to Parquet: throughput
#               vs kafka-consumer-perf-test on the same topic, peak memory with 10,000 machines,
#               latency from window close to durable Parquet on a live stream
#   spark       the features job against Apache Spark Structured Streaming (pyspark, local[*]) on
#               one 10 M-reading topic: throughput, CPU per reading, peak memory of the process
#               tree, a row-by-row check that both wrote the same windows; the raw-consume
#               ceiling (kafka-consumer-perf-test, a counting librdkafka consumer) on the same
#               topic; window-close-to-output latency of both on a live stream; the anomaly job
#               against the features job (the cost of the models)
#   queries     five history queries over the spark section's Parquet history: `spindle query`
#               and `POST /api/query` of `spindle server` against DuckDB, answers compared
#   influxdb    feature rows from Kafka into a private local InfluxDB 1.x through the InfluxDB
#               sink vs the same lines (captured from the sink) posted directly by curl, gzipped,
#               in batches of 5,000, 4 at a time: lines/s and ratio
#   (a new section: add scripts/bench/NAME.sh defining bench_NAME and append NAME to SECTIONS)
#
# Options:
#   --rounds N     rounds per measurement (default 5; medians and spreads are over these)
#   --no-docs      print each section's Markdown to stdout instead of updating the docs
#   --docs FILE    write to FILE instead of docs/BENCHMARKS.md
#
# Environment (all optional):
#   SPINDLE_CACHE        cache root (default ~/.cache/spindle); raw logs go to $SPINDLE_CACHE/bench/
#   CARGO_TARGET_DIR     build folder (default $SPINDLE_CACHE/target)
#   SPINDLE              use this spindle binary instead of building one
#   BENCH_REV            build spindle from a clean export of this commit (e.g. HEAD) instead
#                        of the working tree
#   BENCH_GEN_COUNT      readings per generation run          (default 10000000)
#   BENCH_MACHINES       simulated machines                   (default 10000)
#   BENCH_PRODUCE_COUNT  records per producer run             (default 3000000)
#   BENCH_PAYLOAD_COUNT  readings in perf-test's payload file (default 200000)
#   BENCH_PARTITIONS     partitions of every fresh topic      (default 8)
#   BENCH_SPINDLE_PROPS  extra librdkafka properties for spindle, "k=v k=v" (passed as -X)
#   BENCH_PERF_PROPS     extra producer properties for perf-test, "k=v k=v"
#   BENCH_ENGINE_COUNT   readings in each engine topic        (default 2000000)
#   BENCH_ENGINE_LIVE_SECONDS  length of each live (latency) run (default 90)
#   BENCH_ENGINE_ROLL    the live job's Parquet rolling.interval (default 10s)
#   BENCH_ENGINE_FLUSH   the live job's spindle.sink.flush_interval values, each run per round (default "1s 100ms")
#   BENCH_SPARK_COUNT    readings in the spark section's topic (default 10000000)
#   BENCH_SPARK_VERSION  pyspark and spark-sql-kafka-0-10 version (default 4.2.0)
#   BENCH_SPARK_MEMORY   Spark's driver heap (default 2g)
#   BENCH_SPARK_SHUFFLE  spark.sql.shuffle.partitions (default 8)
#   BENCH_SPARK_LIVE_SECONDS  length of each live (latency) run of the spark section (default 120)
#   BENCH_SPARK_WARMUP   windows ending in a live run's first N seconds are left out (default 30)
#   BENCH_SPARK_ROLL / BENCH_SPARK_FLUSH  the live Spindle job's rolling.interval / flush_interval (1s / 100ms)
#   BENCH_SPARK_CONTENDERS       spark part a's contenders (default "spindle spark perftest kcat rdkafka")
#   BENCH_SPARK_LIVE_CONTENDERS  spark part b's contenders (default "spindle spark")
#   BENCH_MODELS_COUNT   readings in the topic of the models comparison (default 1000000)
#   BENCH_HISTORY        queries: read this history (features/ and alerts/) instead of the spark section's
#   BENCH_SERVER_PORT    queries: port of the `spindle server` it starts (default 18480)
#   BENCH_INFLUX_LINES   influxdb: about this many feature rows (lines) (default 200000)
#   BENCH_INFLUX_PORT    influxdb: port of its private InfluxDB (default 18086)
#   BENCH_INFLUX_BATCH / BENCH_INFLUX_INFLIGHT  influxdb: the reference's lines per POST / POSTs at once (5000 / 4)
#   BENCH_INFLUX_BASELINE  influxdb: also run the job with this spindle binary (a "baseline" contender)
#   BENCH_SKIP           space-separated parts of a section to skip (simulator: generate produce;
#                        engine: throughput latency; spark: replay live models)
#   BENCH_QUIET_PCT      a measured run first waits until the CPUs are at most this % busy (10)
#   BENCH_QUIET_TIMEOUT  ... for at most this many seconds (60; 0 = never wait)
#   BENCH_FROM_RUN       render the sections again from the figures of an earlier run (a folder
#                        $SPINDLE_CACHE/bench/<run>) instead of measuring, e.g. after editing
#                        scripts/bench/<section>-notes.md
#
# Kafka is started with scripts/kafka.sh if it is not running (and then stopped at the end);
# a broker that was already running is left running.
set -euo pipefail

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SPINDLE_CACHE="${SPINDLE_CACHE:-$HOME/.cache/spindle}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SPINDLE_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# shellcheck source=scripts/bench/lib.sh
source "$BENCH_ROOT/scripts/bench/lib.sh"

# The order of `all`.
SECTIONS=(simulator engine spark queries influxdb)

usage() { sed -n '2,75p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

BENCH_ROUNDS=5
BENCH_DOCS="$BENCH_ROOT/docs/BENCHMARKS.md"
write_docs=1
selected=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help | help) usage; exit 0 ;;
    --rounds) [[ $# -ge 2 ]] || die "--rounds needs a number"; BENCH_ROUNDS="$2"; shift 2 ;;
    --rounds=*) BENCH_ROUNDS="${1#--rounds=}"; shift ;;
    --no-docs) write_docs=0; shift ;;
    --docs) [[ $# -ge 2 ]] || die "--docs needs a file"; BENCH_DOCS="$2"; shift 2 ;;
    all) selected+=("${SECTIONS[@]}"); shift ;;
    -*) usage >&2; die "unknown option $1" ;;
    *)
      [[ -f "$BENCH_ROOT/scripts/bench/$1.sh" ]] || { usage >&2; die "unknown section '$1'"; }
      selected+=("$1"); shift ;;
  esac
done
[[ ${#selected[@]} -gt 0 ]] || { usage >&2; exit 2; }
[[ "$BENCH_ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"

need awk sort git taskset free getconf
[[ -c /dev/null ]] || die "/dev/null is not a character device (restore it: rm -f /dev/null && mknod -m 666 /dev/null c 1 3)"
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) is not installed (apt-get install time)"

if [[ -n "${BENCH_FROM_RUN:-}" ]]; then
  BENCH_RUN_DIR="$(cd "$BENCH_FROM_RUN" && pwd)" || die "no folder $BENCH_FROM_RUN"
  BENCH_FROM_RUN="$BENCH_RUN_DIR"
  log "rendering from the figures in $BENCH_RUN_DIR (nothing is measured)"
else
  BENCH_RUN_DIR="$SPINDLE_CACHE/bench/$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$BENCH_RUN_DIR"
  ln -sfn "$BENCH_RUN_DIR" "$SPINDLE_CACHE/bench/latest"
  log "raw logs in $BENCH_RUN_DIR"
fi
export BENCH_ROOT BENCH_ROUNDS BENCH_RUN_DIR

trap stop_kafka_if_started EXIT

[[ "$write_docs" == 1 ]] && docs_init "$BENCH_DOCS"
for name in "${selected[@]}"; do
  # shellcheck source=/dev/null
  source "$BENCH_ROOT/scripts/bench/$name.sh"
  mkdir -p "$BENCH_RUN_DIR/$name"
  out="$BENCH_RUN_DIR/$name/section.md"
  [[ -n "${BENCH_FROM_RUN:-}" ]] || log "== section $name ($BENCH_ROUNDS rounds) =="
  "bench_$name" "$out"
  if [[ "$write_docs" == 1 ]]; then
    docs_replace "$BENCH_DOCS" "$name" "$out"
    log "section $name written to ${BENCH_DOCS#"$BENCH_ROOT"/}"
  else
    cat "$out"
  fi
done
[[ -c /dev/null ]] || die "/dev/null stopped being a character device during the run"
