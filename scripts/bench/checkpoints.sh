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
#  c. latency on a live stream (BENCH_CKPT_MACHINES machines reporting every second, paced to
#     the wall clock by `spindle simulate --realtime`), checkpoints off vs every 10 s: the
#     Parquet sink's commit latency — from the write of a closed window's rows to the moment
#     readers can see them (file completed without checkpoints; checkpoint published with
#     them) — p50/p99 over BENCH_CKPT_LIVE_SECONDS (default 60) per run, files rolled at 1 s,
#     flush interval 100 ms, BENCH_ROUNDS rounds alternating the order.
#
# Usage: SPINDLE=path/to/release/spindle [BENCH_CKPT_PARTS="a b c"] scripts/bench/checkpoints.sh
# Prints a markdown table per part; figures for docs/BENCHMARKS.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SPINDLE="${SPINDLE:?set SPINDLE to a release build of spindle}"
COUNT="${BENCH_CKPT_COUNT:-6000000}"
MACHINES="${BENCH_CKPT_MACHINES:-10000}"
ROUNDS="${BENCH_ROUNDS:-3}"
WORK="$(mktemp -d /tmp/spindle-ckpt-bench.XXXXXX)"
"$ROOT/scripts/kafka.sh" start >/dev/null
PARTS=" ${BENCH_CKPT_PARTS:-a b c} "
part() { [[ "$PARTS" == *" $1 "* ]]; }
TOPIC="ckpt-bench-$(date +%s)"
part a || part b && "$SPINDLE" simulate --brokers 127.0.0.1:9092 --topic "$TOPIC" --partitions 8 --count "$COUNT" \
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
part a && for round in $(seq 1 "$ROUNDS"); do
  order=("0s" "10s" "1s"); (( round % 2 == 0 )) && order=("1s" "10s" "0s")
  for interval in "${order[@]}"; do
    read -r rate cpu < <(run_once "$interval" "r$round-$interval")
    RATES[$interval]+="$rate "; CPUS[$interval]+="$cpu "
    echo "round $round, checkpoints $interval: $rate readings/s, $cpu CPU-s" >&2
  done
done
part a && echo "| checkpoints | readings/s (median of $ROUNDS) | rounds | CPU-s (median) | throughput vs none |"
part a && echo "|---|---|---|---|---|"
part a && base="$(median ${RATES[0s]})"
part a && for interval in 0s 10s 1s; do
  m="$(median ${RATES[$interval]})"
  echo "| $interval | $m | ${RATES[$interval]} | $(median ${CPUS[$interval]}) | $(awk -v a="$m" -v b="$base" 'BEGIN{printf "%.3f", a/b}') |"
done

# b. recovery
part b && echo
part b && echo "| round | restored all partitions after | first new checkpoint after |"
part b && echo "|---|---|---|"
part b && for round in $(seq 1 "$ROUNDS"); do
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

# c. latency on a live stream
LIVE="${BENCH_CKPT_LIVE_SECONDS:-60}"
live_once() { # live_once INTERVAL TAG → prints "p50 p99" (ms)
  local dir="$WORK/$2" job="$WORK/$2.sql" topic="ckpt-live-$(date +%s%N)" sim rt
  mkdir -p "$dir"
  { echo "SET spindle.sink.flush_interval = '100ms';"; job_with "$1" /dev/stdout; } |
    sed "s|'connector' = 'parquet',|'connector' = 'parquet', 'rolling.interval' = '1s',|" >"$job"
  "$SPINDLE" simulate --realtime --duration "$((LIVE + 30))s" --machines "$MACHINES" --interval 1s \
    --brokers 127.0.0.1:9092 --topic "$topic" --partitions 8 --quiet 2>/dev/null &
  sim=$!
  SENSOR_TOPIC="$topic" GROUP_ID="g-$2" HISTORY_PATH="$dir/h" CHECKPOINTS="$dir/c" SPINDLE_LOG=info \
    "$SPINDLE" run "$job" --side-outputs "$dir/side" >/dev/null 2>"$dir/err" &
  rt=$!
  sleep "$LIVE"
  kill -INT "$rt"; wait "$rt" || true
  kill -INT "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true
  local line; line="$(grep -a -o 'parquet: commit latency .*' "$dir/err" | tail -n 1)"
  echo "$line" >&2
  echo "$(grep -o 'p50=[0-9.]*' <<<"$line" | cut -d= -f2) $(grep -o 'p99=[0-9.]*' <<<"$line" | cut -d= -f2)"
}
declare -A P50 P99
part c && for round in $(seq 1 "$ROUNDS"); do
  order=("0s" "10s"); (( round % 2 == 0 )) && order=("10s" "0s")
  for interval in "${order[@]}"; do
    read -r p50 p99 < <(live_once "$interval" "live$round-$interval")
    P50[$interval]+="$p50 "; P99[$interval]+="$p99 "
    echo "round $round, checkpoints $interval: latency p50 $p50 ms, p99 $p99 ms" >&2
  done
done
part c && echo
part c && echo "| checkpoints | p50 ms (median of $ROUNDS) | p99 ms (median) | p99 per round |"
part c && echo "|---|---|---|---|"
part c && for interval in 0s 10s; do
  echo "| $interval | $(median ${P50[$interval]}) | $(median ${P99[$interval]}) | ${P99[$interval]} |"
done
rm -rf "$WORK"
