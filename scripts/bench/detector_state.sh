#!/usr/bin/env bash
# scripts/bench/detector_state.sh — what carrying the anomaly detectors' state through checkpoints
# costs (issue 7), standalone, in one binary:
#
#   jobs/anomaly_detection.sql (its Parquet alert history only; 5 detector calls per machine)
#   over one topic of BENCH_DET_COUNT readings of BENCH_DET_MACHINES machines (8 partitions,
#   2 % faults), checkpoints every 10 s, run with --until-idle:
#     state  the default: each key's detector lives in the partition's store and is checkpointed
#     off    SPINDLE_DETECTOR_STATE=off: detectors run as plain DataFusion window functions, as
#            before checkpoint format 3 (their state is lost at a restart)
#   BENCH_ROUNDS rounds alternating the order; readings/s from the job's summary line, CPU
#   seconds from GNU time, and the bytes of the newest checkpoint of every partition.
#
# Usage: SPINDLE=path/to/release/spindle scripts/bench/detector_state.sh
# Prints a markdown table; figures for docs/BENCHMARKS.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SPINDLE="${SPINDLE:?set SPINDLE to a release build of spindle}"
COUNT="${BENCH_DET_COUNT:-1000000}"
MACHINES="${BENCH_DET_MACHINES:-1000}"
ROUNDS="${BENCH_ROUNDS:-3}"
WORK="$(mktemp -d /tmp/spindle-detector-bench.XXXXXX)"
"$ROOT/scripts/kafka.sh" start >/dev/null
TOPIC="detector-bench-$(date +%s)"
"$SPINDLE" simulate --brokers 127.0.0.1:9092 --topic "$TOPIC" --partitions 8 --count "$COUNT" \
  --machines "$MACHINES" --interval 1s --fault-rate 20 --quiet 2>/dev/null

# The shipped job, its alerts into the Parquet history only, checkpointed every 10 s.
JOB="$WORK/anomalies.sql"
{ echo "SET spindle.checkpoint.interval = '10s';"
  echo "SET spindle.checkpoint.path = '\${CHECKPOINTS}';"
  sed -e "s/'scan.startup.mode' = 'group-offsets',/'scan.startup.mode' = 'earliest-offset',/" \
    -e '/^INSERT INTO alerts SELECT/d' -e '/^INSERT INTO alert_hook SELECT/d' \
    "$ROOT/jobs/anomaly_detection.sql"; } >"$JOB"
[[ "$(grep -c '^INSERT INTO' "$JOB")" == 1 ]] || { echo "could not cut the job to one INSERT" >&2; exit 1; }

run_once() { # run_once MODE TAG → prints "rate cpu checkpoint-bytes"
  local dir="$WORK/$2" mode=()
  mkdir -p "$dir"
  [[ "$1" == off ]] && mode=(SPINDLE_DETECTOR_STATE=off)
  env "${mode[@]}" SENSOR_TOPIC="$TOPIC" GROUP_ID="g-$2" HISTORY_PATH="$dir/h" CHECKPOINTS="$dir/c" \
    SPINDLE_LOG=warn /usr/bin/time -f 'cpu=%U+%S' "$SPINDLE" run "$JOB" --until-idle \
    --side-outputs "$dir/side" >/dev/null 2>"$dir/err"
  local rate cpu bytes
  rate="$(grep -o 'rate=[0-9]*' "$dir/err" | tail -1 | cut -d= -f2)"
  cpu="$(grep -o 'cpu=[0-9.+]*' "$dir/err" | tail -1 | cut -d= -f2 | bc)"
  # The newest checkpoint object of each partition folder.
  bytes="$(find "$dir/c" -name '*.ckpt' -printf '%h %s %f\n' | sort -k1,1 -k3,3V |
    awk '{ last[$1] = $2 } END { s = 0; for (p in last) s += last[p]; print s }')"
  rm -rf "$dir"
  echo "$rate $cpu $bytes"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A RATES CPUS BYTES
for round in $(seq 1 "$ROUNDS"); do
  order=(state off); (( round % 2 == 0 )) && order=(off state)
  for mode in "${order[@]}"; do
    read -r rate cpu bytes < <(run_once "$mode" "r$round-$mode")
    RATES[$mode]+="$rate "; CPUS[$mode]+="$cpu "; BYTES[$mode]+="$bytes "
    echo "round $round, detector state $mode: $rate readings/s, $cpu CPU-s, checkpoints $bytes bytes" >&2
  done
done
echo "| detector state | readings/s (median of $ROUNDS) | per round | CPU-s (median) | per round | newest checkpoints, bytes (8 partitions) |"
echo "|---|---|---|---|---|---|"
for mode in state off; do
  echo "| $mode | $(median ${RATES[$mode]}) | ${RATES[$mode]} | $(median ${CPUS[$mode]}) | ${CPUS[$mode]} | $(median ${BYTES[$mode]}) |"
done
awk -v a="$(median ${RATES[state]})" -v b="$(median ${RATES[off]})" -v c="$(median ${CPUS[state]})" \
  -v d="$(median ${CPUS[off]})" 'BEGIN { printf "\nstate/off: throughput %.3f, CPU %.3f\n", a / b, c / d }'
rm -rf "$WORK"
