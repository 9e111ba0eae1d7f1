#!/usr/bin/env bash
# scripts/bench/checkpoints.sh — the cost of reliability (issue 7), standalone:
#
#  a. throughput of jobs/factory_features.sql on one topic (BENCH_CKPT_COUNT readings of
#     BENCH_CKPT_MACHINES machines, 8 partitions), checkpoints off vs every 10 s vs every 1 s,
#     BENCH_ROUNDS rounds alternating the order; readings/s from the job's summary line and
#     CPU seconds from GNU time.
#  b. recovery after kill -9: a replay of the same topic with checkpoints every second is
#     killed once its first checkpoint round is written; the restarted worker's time from
#     process start until it has restored its partitions ("restored from checkpoint" ×8) and
#     until its first new checkpoint is published (output resumed).
#
# Usage: SPINDLE=path/to/release/spindle scripts/bench/checkpoints.sh
# Prints a markdown table per part; figures for docs/BENCHMARKS.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SPINDLE="${SPINDLE:?set SPINDLE to a release build of spindle}"
COUNT="${BENCH_CKPT_COUNT:-6000000}"
MACHINES="${BENCH_CKPT_MACHINES:-10000}"
ROUNDS="${BENCH_ROUNDS:-3}"
WORK="$(mktemp -d /tmp/spindle-ckpt-bench.XXXXXX)"
"$ROOT/scripts/kafka.sh" start >/dev/null
TOPIC="ckpt-bench-$(date +%s)"
"$SPINDLE" simulate --brokers 127.0.0.1:9092 --topic "$TOPIC" --partitions 8 --count "$COUNT" \
  --machines "$MACHINES" --interval 1s --quiet 2>/dev/null

job_with() { # job_with INTERVAL FILE: the features job with a checkpoint interval
  { echo "SET spindle.checkpoint.interval = '$1';"
    echo "SET spindle.checkpoint.path = '\${CHECKPOINTS}';"
    sed "s/'scan.startup.mode' = 'group-offsets',/'scan.startup.mode' = 'earliest-offset', 'properties.session.timeout.ms' = '6000', 'properties.group.instance.id' = 'worker-1',/" \
      "$ROOT/jobs/factory_features.sql"; } >"$2"
}
run_once() { # run_once INTERVAL TAG → prints "rate cpu"
  local dir="$WORK/$2" job="$WORK/$2.sql"
  mkdir -p "$dir"; job_with "$1" "$job"
  SENSOR_TOPIC="$TOPIC" GROUP_ID="g-$2" HISTORY_PATH="$dir/h" CHECKPOINTS="$dir/c" SPINDLE_LOG=warn \
    /usr/bin/time -f 'cpu=%U+%S' "$SPINDLE" run "$job" --until-idle --side-outputs "$dir/side" \
    >/dev/null 2>"$dir/err"
  local rate cpu
  rate="$(grep -o 'rate=[0-9]*' "$dir/err" | tail -1 | cut -d= -f2)"
  cpu="$(grep -o 'cpu=[0-9.+]*' "$dir/err" | tail -1 | cut -d= -f2 | bc)"
  echo "$rate $cpu"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A RATES CPUS
for round in $(seq 1 "$ROUNDS"); do
  order=("0s" "10s" "1s"); (( round % 2 == 0 )) && order=("1s" "10s" "0s")
  for interval in "${order[@]}"; do
    read -r rate cpu < <(run_once "$interval" "r$round-$interval")
    RATES[$interval]+="$rate "; CPUS[$interval]+="$cpu "
    echo "round $round, checkpoints $interval: $rate readings/s, $cpu CPU-s" >&2
  done
done
echo "| checkpoints | readings/s (median of $ROUNDS) | rounds | CPU-s (median) | throughput vs none |"
echo "|---|---|---|---|---|"
base="$(median ${RATES[0s]})"
for interval in 0s 10s 1s; do
  m="$(median ${RATES[$interval]})"
  echo "| $interval | $m | ${RATES[$interval]} | $(median ${CPUS[$interval]}) | $(awk -v a="$m" -v b="$base" 'BEGIN{printf "%.3f", a/b}') |"
done

# b. recovery
echo
echo "| round | restored all partitions after | first new checkpoint after |"
echo "|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  dir="$WORK/kill$round"; job="$WORK/kill$round.sql"; mkdir -p "$dir"; job_with 1s "$job"
  # exec: `env_run … &` forks a subshell; $! must be spindle itself, or kill -9 misses it.
  env_run() { SENSOR_TOPIC="$TOPIC" GROUP_ID="g-kill$round" HISTORY_PATH="$dir/h" CHECKPOINTS="$dir/c" SPINDLE_LOG=info exec "$@"; }
  env_run "$SPINDLE" run "$job" --side-outputs "$dir/side" >/dev/null 2>"$dir/first.err" &
  pid=$!
  until [[ "$(find "$dir/c" -name '*.ckpt' 2>/dev/null | wc -l)" -ge 8 ]]; do sleep 0.05; done
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  before="$(find "$dir/c" -name '*.ckpt' | wc -l)"
  start=$(date +%s.%N)
  env_run "$SPINDLE" run "$job" --side-outputs "$dir/side" >/dev/null 2>"$dir/second.err" &
  pid=$!
  until [[ "$(grep -c 'restored from checkpoint' "$dir/second.err")" -ge 8 ]]; do sleep 0.02; done
  restored=$(date +%s.%N)
  until [[ "$(find "$dir/c" -name '*.ckpt' | wc -l)" -gt "$before" ]]; do sleep 0.02; done
  resumed=$(date +%s.%N)
  kill -INT "$pid"; wait "$pid" || echo "worker exited with $? after SIGINT" >&2
  grep -q "already exists\|fenced" "$dir/second.err" && echo "round $round: $(grep -m1 'already exists\|fenced' "$dir/second.err")" >&2
  echo "| $round | $(awk -v a="$restored" -v b="$start" 'BEGIN{printf "%.2f s", a-b}') | $(awk -v a="$resumed" -v b="$start" 'BEGIN{printf "%.2f s", a-b}') |"
done
rm -rf "$WORK"
