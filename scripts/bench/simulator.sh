# shellcheck shell=bash
# scripts/bench/simulator.sh — section "simulator" of scripts/bench.sh (sourced by it).
#
#  a. generation on one core: `taskset -c 0 spindle simulate ... --output - >/dev/null`, JSON
#     and influx-lp, alternating, BENCH_ROUNDS rounds; readings/s from spindle's summary line.
#     NOT `--output /dev/null`: spindle writes a file as NAME.partial and renames it to NAME at
#     the end, which replaces the /dev/null device node with a regular file (a bug, reported).
#  b. producing to the local broker: `spindle simulate --brokers ...` vs
#     kafka-producer-perf-test with the same topic layout, acks, idempotence, compression,
#     linger.ms and batch.size, and the same records (a payload file written by spindle).
#     Both in every round, the order alternating; a warm-up pair first (not counted).

# shellcheck disable=SC2153 # BENCH_RUN_DIR and BENCH_ROUNDS come from bench.sh
SIM_GEN_COUNT="${BENCH_GEN_COUNT:-10000000}"
SIM_MACHINES="${BENCH_MACHINES:-10000}"
SIM_PRODUCE_COUNT="${BENCH_PRODUCE_COUNT:-3000000}"
SIM_PAYLOAD_COUNT="${BENCH_PAYLOAD_COUNT:-200000}"
SIM_PARTITIONS="${BENCH_PARTITIONS:-8}"
SIM_WARMUP_COUNT="${BENCH_WARMUP_COUNT:-300000}"
SIM_SKIP=" ${BENCH_SKIP:-} "

# The settings both producers get. spindle sets these itself (simulator/src/output/kafka.rs:
# acks=all + enable.idempotence=true, compression lz4, linger.ms 5, batch.size 1000000,
# batch.num.messages 100000, partitioner murmur2_random); perf-test gets them spelled out.
SIM_ACKS=all
SIM_COMPRESSION=lz4
SIM_LINGER_MS=5
SIM_BATCH_SIZE=1000000

# value of key=value in a summary line: sim_kv KEY LINE
sim_kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | sed 's|/s$||' | head -n 1; }

# The summary line spindle prints last on stderr.
sim_summary() { grep '^simulate: records=' "$1" | tail -n 1; }

sim_x_args() {
  local kv
  SIM_X=()
  set -f
  for kv in ${BENCH_SPINDLE_PROPS:-}; do SIM_X+=(-X "$kv"); done
  set +f
}

# ---------------------------------------------------------------------------- a. generation

# sim_gen_run FORMAT ROUND: one generation run; appends "fmt round rate seconds bytes user sys wall" to gen.tsv
sim_gen_run() {
  local fmt="$1" round="$2" dir="$SIM_DATA" line rate secs bytes wall user sys
  local err="$dir/gen-$fmt-r$round.err" tf="$dir/gen-$fmt-r$round.time" load
  wait_quiet
  load="$QUIET_BUSY"
  run_timed "$tf" taskset -c 0 "$SPINDLE" simulate --count "$SIM_GEN_COUNT" --machines "$SIM_MACHINES" \
    --format "$fmt" --output - --quiet >/dev/null 2>"$err" || { cat "$err" >&2; die "spindle simulate failed"; }
  line="$(sim_summary "$err")"
  [[ -n "$line" ]] || { cat "$err" >&2; die "no summary line from spindle simulate"; }
  rate="$(sim_kv rate "$line")" secs="$(sim_kv seconds "$line")" bytes="$(sim_kv bytes "$line")"
  read -r wall user sys _ <"$tf"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$fmt" "$round" "$rate" "$secs" "$bytes" "$user" "$sys" "$wall" "$load" >>"$dir/gen.tsv"
  log "generate $fmt round $round: $(fmt_int "$rate") readings/s ($secs s, $(fmt_fixed 1 "$(calc "$bytes / $SIM_GEN_COUNT")") B/reading)"
}

sim_generate() {
  local r
  : >"$SIM_DATA/gen.tsv"
  for r in $(seq 1 "$BENCH_ROUNDS"); do
    if ((r % 2)); then
      sim_gen_run json "$r"; sim_gen_run influx-lp "$r"
    else
      sim_gen_run influx-lp "$r"; sim_gen_run json "$r"
    fi
  done
}

# ---------------------------------------------------------------------------- b. producing

# sim_produce_spindle TOPIC COUNT TAG -> sets P_* figures
sim_produce_spindle() {
  local topic="$1" count="$2" tag="$3" dir="$SIM_DATA" line b0 b1 wall user sys
  local err="$dir/produce-$tag.err" tf="$dir/produce-$tag.time"
  topic_create "$topic" "$SIM_PARTITIONS"
  sim_x_args
  sync
  b0="$(proc_cpu_seconds "$BROKER_PID")"
  run_timed "$tf" "$SPINDLE" simulate --count "$count" --machines "$SIM_MACHINES" \
    --brokers "$KAFKA_ADDR" --topic "$topic" --partitions "$SIM_PARTITIONS" \
    --acks "$SIM_ACKS" --compression "$SIM_COMPRESSION" --linger-ms "$SIM_LINGER_MS" \
    ${SIM_X[@]+"${SIM_X[@]}"} --quiet 2>"$err" || { cat "$err" >&2; die "spindle simulate to Kafka failed"; }
  b1="$(proc_cpu_seconds "$BROKER_PID")"
  line="$(sim_summary "$err")"
  [[ -n "$line" ]] || { cat "$err" >&2; die "no summary line from spindle simulate"; }
  [[ "$(sim_kv failed "$line")" == 0 && "$(sim_kv delivered "$line")" == "$count" ]] ||
    die "spindle did not deliver every record: $line"
  read -r wall user sys _ <"$tf"
  P_RATE="$(sim_kv rate "$line")"
  P_SECS="$(sim_kv seconds "$line")"
  P_MIBS="$(calc "$(sim_kv bytes "$line") / $P_SECS / 1048576")"
  P_WALL="$wall" P_CPU="$(calc "$user + $sys")" P_BROKER_CPU="$(calc "$b1 - $b0")" P_LAT="-"
  P_STORED="$(topic_log_bytes "$topic")"
  P_IN_TOPIC="$(topic_record_count "$topic")"
  topic_delete "$topic"
}

# sim_produce_perftest TOPIC COUNT TAG -> sets P_* figures
sim_produce_perftest() {
  local topic="$1" count="$2" tag="$3" dir="$SIM_DATA" line b0 b1 wall user sys kv
  local out="$dir/produce-$tag.out" tf="$dir/produce-$tag.time" props=()
  props=(bootstrap.servers="$KAFKA_ADDR" acks="$SIM_ACKS" enable.idempotence=true
    compression.type="$SIM_COMPRESSION" linger.ms="$SIM_LINGER_MS" batch.size="$SIM_BATCH_SIZE")
  set -f
  for kv in ${BENCH_PERF_PROPS:-}; do props+=("$kv"); done
  set +f
  topic_create "$topic" "$SIM_PARTITIONS"
  sync
  b0="$(proc_cpu_seconds "$BROKER_PID")"
  run_timed "$tf" "$BENCH_ROOT/scripts/kafka.sh" tool producer-perf-test --topic "$topic" \
    --num-records "$count" --throughput -1 --payload-file "$SIM_PAYLOAD" \
    --command-property "${props[@]}" >"$out" 2>&1 || { cat "$out" >&2; die "producer-perf-test failed"; }
  b1="$(proc_cpu_seconds "$BROKER_PID")"
  # Final summary: "N records sent, X records/sec (Y MB/sec), Z ms avg latency, ... 99.9th."
  line="$(grep 'records sent' "$out" | grep '99.9th' | tail -n 1)"
  [[ -n "$line" ]] || { cat "$out" >&2; die "no summary line from producer-perf-test"; }
  [[ "$(awk '{ print $1 }' <<<"$line")" == "$count" ]] || die "perf-test did not send every record: $line"
  read -r wall user sys _ <"$tf"
  P_RATE="$(sed -n 's/^[0-9]* records sent, \([0-9.]*\) records\/sec.*/\1/p' <<<"$line")"
  P_MIBS="$(sed -n 's/.*records\/sec (\([0-9.]*\) MB\/sec).*/\1/p' <<<"$line")"
  P_LAT="$(sed -n 's/.*MB\/sec), \([0-9.]*\) ms avg latency.*/\1/p' <<<"$line")"
  P_SECS="$(calc "$count / $P_RATE")"
  P_WALL="$wall" P_CPU="$(calc "$user + $sys")" P_BROKER_CPU="$(calc "$b1 - $b0")"
  P_STORED="$(topic_log_bytes "$topic")"
  P_IN_TOPIC="$(topic_record_count "$topic")"
  topic_delete "$topic"
}

# One contender's run, recorded in produce.tsv:
# round contender rate mib_s secs wall cpu broker_cpu stored_bytes in_topic avg_latency_ms busy_pct_before
sim_produce_run() {
  local who="$1" round="$2" count="$3" topic
  topic="bench-sim-$BENCH_RUN_ID-r$round-$who"
  wait_quiet
  P_LOAD="$QUIET_BUSY"
  "sim_produce_$who" "$topic" "$count" "r$round-$who"
  [[ "$P_IN_TOPIC" == "$count" ]] || die "$who: topic $topic holds $P_IN_TOPIC records, expected $count"
  if [[ "$round" != warmup ]]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$who" "$P_RATE" "$P_MIBS" "$P_SECS" \
      "$P_WALL" "$P_CPU" "$P_BROKER_CPU" "$P_STORED" "$P_IN_TOPIC" "$P_LAT" "$P_LOAD" >>"$SIM_DATA/produce.tsv"
  fi
  log "produce $who round $round: $(fmt_int "$P_RATE") records/s, $(fmt_fixed 1 "$P_MIBS") MiB/s, client CPU ${P_CPU}s, broker CPU ${P_BROKER_CPU}s, stored $(fmt_int "$P_STORED") B"
}

sim_produce() {
  local r
  ensure_kafka
  BROKER_PID="$(kafka_broker_pid)" || die "cannot find the broker's pid"
  BENCH_RUN_ID="$(date +%s)"
  SIM_PAYLOAD="$SIM_DATA/payload.json"
  "$SPINDLE" simulate --count "$SIM_PAYLOAD_COUNT" --machines "$SIM_MACHINES" --output "$SIM_PAYLOAD" --quiet \
    2>"$SIM_DATA/payload.err"
  : >"$SIM_DATA/produce.tsv"
  log "warm-up pair ($SIM_WARMUP_COUNT records each, not counted)"
  sim_produce_run spindle warmup "$SIM_WARMUP_COUNT"
  sim_produce_run perftest warmup "$SIM_WARMUP_COUNT"
  for r in $(seq 1 "$BENCH_ROUNDS"); do
    if ((r % 2)); then
      sim_produce_run spindle "$r" "$SIM_PRODUCE_COUNT"; sim_produce_run perftest "$r" "$SIM_PRODUCE_COUNT"
    else
      sim_produce_run perftest "$r" "$SIM_PRODUCE_COUNT"; sim_produce_run spindle "$r" "$SIM_PRODUCE_COUNT"
    fi
  done
}

# ---------------------------------------------------------------------------- report

# column N of gen.tsv rows of FORMAT
sim_gen_col() { awk -F'\t' -v f="$1" -v c="$2" '$1 == f { print $c }' "$SIM_DATA/gen.tsv"; }
# column N of produce.tsv rows of CONTENDER
sim_prod_col() { awk -F'\t' -v w="$1" -v c="$2" '$2 == w { print $c }' "$SIM_DATA/produce.tsv"; }
# spindle/perftest rate ratio per round
sim_ratios() {
  awk -F'\t' '$2 == "spindle" { s[$1] = $3 } $2 == "perftest" { p[$1] = $3 }
    END { for (r = 1; r in s; r++) if (r in p) printf "%.3f\n", s[r] / p[r] }' "$SIM_DATA/produce.tsv"
}

sim_report_generate() {
  local fmt rates med b user
  cat <<EOF
### a. Generation on one core

\`\`\`sh
EOF
  for fmt in json influx-lp; do
    echo "taskset -c 0 spindle simulate --count $SIM_GEN_COUNT --machines $SIM_MACHINES --format $fmt --output - --quiet >/dev/null"
  done
  cat <<EOF
\`\`\`

Pinned to CPU 0; readings/s from spindle's own summary line (\`rate=\`, timed from the first
reading to the last byte written). Output goes to stdout redirected to \`/dev/null\`, not
\`--output /dev/null\`: spindle writes files as \`NAME.partial\` and renames them to \`NAME\` at the
end, which would replace the \`/dev/null\` device with a regular file (and time a tmpfs write
plus fsync instead of the generator). The two formats alternate within each round; each run
waits up to ${BENCH_QUIET_TIMEOUT:-60} s for the machine to be quiet (≤ ${BENCH_QUIET_PCT:-10} % of both cores busy), and the
busy percentage seen just before it is shown. Aim (issue): ≥ 2 million readings/s on one core.

| round | json readings/s | json s | influx-lp readings/s | influx-lp s | CPU busy before, % (json, lp) |
| ---: | ---: | ---: | ---: | ---: | ---: |
EOF
  awk -F'\t' '{ k = $1; r[$2] = 1; rate[k, $2] = $3; secs[k, $2] = $4; load[k, $2] = $9 }
    END { for (i = 1; i in r; i++) printf "%d\t%s\t%s\t%s\t%s\t%s, %s\n", i, rate["json", i], secs["json", i],
      rate["influx-lp", i], secs["influx-lp", i], load["json", i], load["influx-lp", i] }' \
    "$SIM_DATA/gen.tsv" |
    while IFS=$'\t' read -r r a b c d l; do
      printf '| %s | %s | %s | %s | %s | %s |\n' "$r" "$(fmt_int "$a")" "$b" "$(fmt_int "$c")" "$d" "$l"
    done
  echo
  cat <<'EOF'

"per CPU-s" divides the readings by the process's user+sys CPU time: it leaves out the time
the run waited for the core while other processes had it, so on a busy machine it is closer
to what an idle core does than readings/s (shared caches still slow it down).

| format | readings/s, median (min, max; spread) | readings per CPU-s, median (best) | bytes/reading | aim ≥ 2 M/s (median) |
| --- | --- | --- | ---: | --- |
EOF
  for fmt in json influx-lp; do
    mapfile -t rates < <(sim_gen_col "$fmt" 3)
    med="$(stat_median "${rates[@]}")"
    b="$(calc "$(sim_gen_col "$fmt" 5 | head -n 1) / $SIM_GEN_COUNT")"
    mapfile -t percpu < <(awk -F'\t' -v f="$fmt" -v n="$SIM_GEN_COUNT" '$1 == f { print n / ($6 + $7) }' "$SIM_DATA/gen.tsv")
    printf '| %s | %s | %s (%s) | %s | %s |\n' "$fmt" "$(summarize fmt_int "${rates[@]}")" \
      "$(fmt_int "$(stat_median "${percpu[@]}")")" "$(fmt_int "$(stat_max "${percpu[@]}")")" "$(fmt_fixed 1 "$b")" \
      "$(is_true "$med >= 2000000" && echo "met ($(fmt_fixed 2 "$(calc "$med / 2000000")")×)" || echo "**missed** ($(fmt_fixed 2 "$(calc "$med / 2000000")")×)")"
    if [[ "$fmt" == json ]]; then
      SIM_GEN_MED_JSON="$med" SIM_GEN_MAX_JSON="$(stat_max "${rates[@]}")" SIM_GEN_CPU_JSON="$(stat_median "${percpu[@]}")"
    else
      SIM_GEN_MED_LP="$med" SIM_GEN_MAX_LP="$(stat_max "${rates[@]}")" SIM_GEN_CPU_LP="$(stat_median "${percpu[@]}")"
    fi
  done
  echo
}

sim_report_produce() {
  local payload_avg x_note="" ratios rs rp ms mp cs cp bs bp ss sp lat
  payload_avg="$(awk '{ n++; b += length($0) } END { printf "%.1f", b / n }' "$SIM_PAYLOAD")"
  # shellcheck disable=SC2086 # split on purpose
  [[ -n "${BENCH_SPINDLE_PROPS:-}" ]] && x_note="$(set -f; printf -- ' -X %s' ${BENCH_SPINDLE_PROPS})"
  cat <<EOF
### b. Producing to the local broker: spindle vs kafka-producer-perf-test

Both write $SIM_PRODUCE_COUNT records to a fresh topic with $SIM_PARTITIONS partitions (replication 1) on the
single local broker, with acks=$SIM_ACKS and idempotence, $SIM_COMPRESSION compression, linger.ms=$SIM_LINGER_MS
and batch.size=$SIM_BATCH_SIZE. The records are the same: perf-test sends payloads drawn at random
from a file of the first $SIM_PAYLOAD_COUNT JSON readings spindle generates (mean $payload_avg bytes), so
record size and compressibility match. Each round runs both, the order alternating
(spindle first in odd rounds); a warm-up pair of $SIM_WARMUP_COUNT records each runs first and is not
counted. Every run is checked: all records acknowledged and the topic's end offsets sum to
$SIM_PRODUCE_COUNT.

\`\`\`sh
# once: the payload file
spindle simulate --count $SIM_PAYLOAD_COUNT --machines $SIM_MACHINES --output payload.json
# per run: a fresh topic (deleted after the run)
kafka.sh tool topics --bootstrap-server $KAFKA_ADDR --create --topic T --partitions $SIM_PARTITIONS --replication-factor 1
# spindle (sets batch.size=1000000 batch.num.messages=100000 queue.buffering.max.messages=1000000
#          queue.buffering.max.kbytes=1048576 partitioner=murmur2_random itself)
spindle simulate --count $SIM_PRODUCE_COUNT --machines $SIM_MACHINES --brokers $KAFKA_ADDR --topic T \\
  --partitions $SIM_PARTITIONS --acks $SIM_ACKS --compression $SIM_COMPRESSION --linger-ms $SIM_LINGER_MS${x_note} --quiet
# Kafka's producer-perf-test
kafka.sh tool producer-perf-test --topic T --num-records $SIM_PRODUCE_COUNT --throughput -1 --payload-file payload.json \\
  --command-property bootstrap.servers=$KAFKA_ADDR acks=$SIM_ACKS enable.idempotence=true \\
  compression.type=$SIM_COMPRESSION linger.ms=$SIM_LINGER_MS batch.size=$SIM_BATCH_SIZE${BENCH_PERF_PROPS:+ $BENCH_PERF_PROPS}
\`\`\`

records/s and MiB/s (payload bytes, keys not counted) are each tool's own figure: spindle's
summary line (first reading to last acknowledgement, after connecting), perf-test's final
line (first send to flush; JVM start not included). "process s" is the wall time of the whole
process (JVM start, connection and topic metadata included); "client CPU" its user+sys time;
"broker CPU" what the broker process used during the run; "stored" the bytes of the topic's
log segments after the run (after compression, with batch headers and — for spindle — keys);
"CPU busy before" how busy the machine's 2 cores were in the second before the run started
(each run waits up to ${BENCH_QUIET_TIMEOUT:-60} s for that to drop to ${BENCH_QUIET_PCT:-10} % or less).

| round | contender | records/s | MiB/s | process s | client CPU s | broker CPU s | stored MB | perf-test avg latency ms | CPU busy before, % |
| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
EOF
  while IFS=$'\t' read -r r who rate mibs _ wall cpu bcpu stored _ lat load; do
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$r" "$who" "$(fmt_int "$rate")" "$(fmt_fixed 1 "$mibs")" \
      "$wall" "$(fmt_fixed 2 "$cpu")" "$(fmt_fixed 2 "$bcpu")" "$(fmt_fixed 1 "$(calc "$stored / 1e6")")" "$lat" "$load"
  done <"$SIM_DATA/produce.tsv"
  mapfile -t ratios < <(sim_ratios)
  echo
  echo "Ratio spindle / perf-test (records/s) per round: $(printf '%s, ' "${ratios[@]}" | sed 's/, $//')."
  echo
  mapfile -t rs < <(sim_prod_col spindle 3); mapfile -t rp < <(sim_prod_col perftest 3)
  mapfile -t ms < <(sim_prod_col spindle 4); mapfile -t mp < <(sim_prod_col perftest 4)
  mapfile -t cs < <(sim_prod_col spindle 7); mapfile -t cp < <(sim_prod_col perftest 7)
  mapfile -t bs < <(sim_prod_col spindle 8); mapfile -t bp < <(sim_prod_col perftest 8)
  mapfile -t ss < <(sim_prod_col spindle 9); mapfile -t sp < <(sim_prod_col perftest 9)
  mapfile -t lat < <(sim_prod_col perftest 11)
  cat <<EOF
| | spindle | perf-test |
| --- | --- | --- |
| records/s, median (min, max; spread) | $(summarize fmt_int "${rs[@]}") | $(summarize fmt_int "${rp[@]}") |
| MiB/s, median | $(fmt_fixed 1 "$(stat_median "${ms[@]}")") | $(fmt_fixed 1 "$(stat_median "${mp[@]}")") |
| client CPU s per run, median | $(fmt_fixed 2 "$(stat_median "${cs[@]}")") (generation included) | $(fmt_fixed 2 "$(stat_median "${cp[@]}")") (JVM, JIT and GC included) |
| broker CPU s per run, median | $(fmt_fixed 2 "$(stat_median "${bs[@]}")") | $(fmt_fixed 2 "$(stat_median "${bp[@]}")") |
| stored bytes per record, median | $(fmt_fixed 1 "$(calc "$(stat_median "${ss[@]}") / $SIM_PRODUCE_COUNT")") | $(fmt_fixed 1 "$(calc "$(stat_median "${sp[@]}") / $SIM_PRODUCE_COUNT")") |
| keys | machine_id (\`m-0000\` … \`m-9999\`, 6 bytes), murmur2 partitioning | none (sticky partitioner) |

**Median ratio spindle / perf-test: $(fmt_fixed 3 "$(stat_median "${ratios[@]}")")** (min $(stat_min "${ratios[@]}"), max $(stat_max "${ratios[@]}")); aim ≥ 0.9: $(is_true "$(stat_median "${ratios[@]}") >= 0.9" && echo met || echo "**missed**").

EOF
  SIM_RATIO_MED="$(stat_median "${ratios[@]}")"
  SIM_RS_MED="$(stat_median "${rs[@]}")" SIM_RP_MED="$(stat_median "${rp[@]}")"
  SIM_CS_MED="$(stat_median "${cs[@]}")" SIM_CP_MED="$(stat_median "${cp[@]}")"
  SIM_BS_MED="$(stat_median "${bs[@]}")" SIM_BP_MED="$(stat_median "${bp[@]}")"
}

# The reading: facts computed from this run; the analysis of causes lives in
# scripts/bench/simulator-notes.md (hand-written, dated) and is appended verbatim.
sim_report_reading() {
  local s=""
  echo "### Reading"
  echo
  if [[ "$SIM_SKIP" != *" generate "* ]]; then
    s+="Generation: JSON runs at a median $(fmt_m "$SIM_GEN_MED_JSON") readings/s on one core (best round $(fmt_m "$SIM_GEN_MAX_JSON"), $(fmt_m "$SIM_GEN_CPU_JSON") per CPU-second) and influx-lp at $(fmt_m "$SIM_GEN_MED_LP") readings/s (best $(fmt_m "$SIM_GEN_MAX_LP"), $(fmt_m "$SIM_GEN_CPU_LP") per CPU-second), "
    if is_true "$SIM_GEN_MED_JSON >= 2000000 && $SIM_GEN_MED_LP >= 2000000"; then
      s+="so the ≥ 2 M/s aim is met for both formats. "
    elif is_true "$SIM_GEN_MAX_JSON >= 2000000 || $SIM_GEN_CPU_JSON >= 2000000"; then
      s+="so the ≥ 2 M/s aim is met by JSON on a quiet core but not in the median of this run, and not by influx-lp. "
    else
      s+="so the ≥ 2 M/s aim is **not** met, not even by the best round or per CPU-second. "
    fi
  fi
  if [[ "$SIM_SKIP" != *" produce "* ]]; then
    s+="Producing: spindle delivers a median $(fmt_int "$SIM_RS_MED") records/s against perf-test's $(fmt_int "$SIM_RP_MED"), a median ratio of $(fmt_fixed 2 "$SIM_RATIO_MED")×, "
    if is_true "$SIM_RATIO_MED >= 1.0"; then
      s+="so spindle is at least as fast as Kafka's own Java tool here (aim ≥ 0.9 met). "
    elif is_true "$SIM_RATIO_MED >= 0.9"; then
      s+="within the ≥ 0.9 aim though slower than Kafka's own Java tool. "
    else
      s+="below the ≥ 0.9 aim. "
    fi
    s+="Per run spindle used $(fmt_fixed 1 "$SIM_CS_MED") CPU-s (it also generates and JSON-encodes every reading, which perf-test does not: it resends prepared payloads) against perf-test's $(fmt_fixed 1 "$SIM_CP_MED") CPU-s, and the broker used $(fmt_fixed 1 "$SIM_BS_MED") vs $(fmt_fixed 1 "$SIM_BP_MED") CPU-s. "
    s+="Client and broker share the machine's two cores, so the broker's CPU is not free for the client. "
    s+="The workloads are not identical in one respect: spindle keys every record by machine_id, so with 10,000 machines consecutive records spread over all $SIM_PARTITIONS partitions and each partition's batch fills at 1/$SIM_PARTITIONS of the rate, while perf-test sends no keys and Kafka's sticky partitioner fills one partition's batch at a time; keys also add bytes per record."
  fi
  echo "$s"
  echo
  if [[ -f "$BENCH_ROOT/scripts/bench/simulator-notes.md" ]]; then
    cat "$BENCH_ROOT/scripts/bench/simulator-notes.md"
    echo
  fi
}

bench_simulator() {
  local out="$1"
  SIM_DATA="$BENCH_RUN_DIR/simulator"
  if [[ -n "${BENCH_FROM_RUN:-}" ]]; then
    # Render again from the figures of an earlier run (e.g. after editing the notes).
    SIM_DATA="$BENCH_FROM_RUN/simulator"
    [[ -f "$SIM_DATA/meta.env" ]] || die "no $SIM_DATA/meta.env"
    # shellcheck source=/dev/null
    source "$SIM_DATA/meta.env"
  else
    build_spindle
    SIM_META_STARTED="$(date -u '+%Y-%m-%d %H:%M UTC')"
    SIM_META_MACHINE="$(machine_md)"
    SIM_META_ROUNDS="$BENCH_ROUNDS"
    SIM_META_RUN_DIR="${SIM_DATA/#$HOME/\~}"
    SIM_META_VERSIONS="- Spindle: \`$("$SPINDLE" --version 2>/dev/null || echo spindle)\`, $SPINDLE_SOURCE, release build, $(rustc --version)
- librdkafka (rdkafka-sys): $(awk '/^name = "rdkafka-sys"/ { getline; gsub(/"/, "", $3); print $3 }' "${SPINDLE_SRC_DIR:-$BENCH_ROOT}/Cargo.lock")
- Kafka $(kafka_version 2>/dev/null || echo "?") (single KRaft node from \`scripts/kafka.sh\`, broker heap ${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}), $(java_version)"
    SIM_PAYLOAD="$SIM_DATA/payload.json"
    [[ "$SIM_SKIP" == *" generate "* ]] || sim_generate
    [[ "$SIM_SKIP" == *" produce "* ]] || sim_produce
    KAFKA_ADDR="${KAFKA_ADDR:-}"
    declare -p SIM_META_STARTED SIM_META_MACHINE SIM_META_ROUNDS SIM_META_RUN_DIR SIM_META_VERSIONS \
      SIM_GEN_COUNT SIM_MACHINES SIM_PRODUCE_COUNT SIM_PAYLOAD_COUNT SIM_PARTITIONS SIM_WARMUP_COUNT \
      SIM_SKIP SIM_PAYLOAD KAFKA_ADDR >"$SIM_DATA/meta.env"
    printf 'declare -- BENCH_SPINDLE_PROPS=%q BENCH_PERF_PROPS=%q BENCH_QUIET_TIMEOUT=%q BENCH_QUIET_PCT=%q\n' \
      "${BENCH_SPINDLE_PROPS:-}" "${BENCH_PERF_PROPS:-}" "${BENCH_QUIET_TIMEOUT:-60}" "${BENCH_QUIET_PCT:-10}" >>"$SIM_DATA/meta.env"
  fi
  {
    cat <<EOF
## Simulator: generation and producing to Kafka

Written by \`scripts/bench.sh simulator --rounds $SIM_META_ROUNDS\`, started $SIM_META_STARTED.

$SIM_META_VERSIONS
$SIM_META_MACHINE
- Raw logs: \`$SIM_META_RUN_DIR/\`

EOF
    [[ "$SIM_SKIP" == *" generate "* ]] || sim_report_generate
    [[ "$SIM_SKIP" == *" produce "* ]] || sim_report_produce
    sim_report_reading
  } >"$out"
}
