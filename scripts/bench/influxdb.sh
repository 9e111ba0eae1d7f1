# shellcheck shell=bash
# scripts/bench/influxdb.sh — section "influxdb" of scripts/bench.sh (sourced by it): lines per
# second into a local InfluxDB 1.x through the InfluxDB sink, against the same server ingesting
# the same lines posted directly (issue 5).
#
# Once per run:
#  - a private InfluxDB (scripts/influxdb.sh on port BENCH_INFLUX_PORT, default 18086, so other
#    people's tests on the shared server neither disturb nor are disturbed; stopped with its data
#    at the end when this section started it);
#  - feature rows in Kafka: `spindle simulate` readings (BENCH_MACHINES machines, one reading a
#    second) and a prep job (the features query of jobs/features_to_influxdb.sql with a Kafka sink)
#    turn into one topic of about BENCH_INFLUX_LINES JSON feature rows, so the measured job only
#    decodes and writes (its source is cheap next to the sink and the server);
#  - the sink's exact lines: the measured job runs once against influx_capture.py, a stand-in
#    /write endpoint that keeps the decompressed bodies; they are cut into files of
#    BENCH_INFLUX_BATCH lines, each compressed with `gzip -1` (the sink's flate2 level "fast").
# Per round, into a fresh database each, the order rotating:
#  - spindle: `spindle run sink.sql --until-idle` (fresh consumer group, earliest offset; the
#    sink with its default batching, gzip and requests in flight), under GNU time;
#  - reference: the pre-compressed files posted by `xargs -P BENCH_INFLUX_INFLIGHT curl --retry 10`;
#  - baseline (only with BENCH_INFLUX_BASELINE=BINARY): the spindle job run by that binary.
# Each database must then hold exactly the topic's rows (count, sum of an integer field, count
# of a sometimes-null field: the same for both) before its time counts.

# shellcheck disable=SC2153 # BENCH_RUN_DIR and BENCH_ROUNDS come from bench.sh
INF_LINES="${BENCH_INFLUX_LINES:-200000}"
INF_MACHINES="${BENCH_MACHINES:-10000}"
INF_PARTITIONS="${BENCH_PARTITIONS:-8}"
INF_PORT="${BENCH_INFLUX_PORT:-18086}"
INF_BATCH="${BENCH_INFLUX_BATCH:-5000}"
INF_INFLIGHT="${BENCH_INFLUX_INFLIGHT:-4}"
INF_URL="http://127.0.0.1:$INF_PORT"
INF_STARTED=0
# BENCH_INFLUX_BASELINE=PATH: a third contender, "baseline", the same job run by another spindle
# binary (e.g. a build of the previous commit), to measure a change of the sink side by side.
INF_BASELINE="${BENCH_INFLUX_BASELINE:-}"
INF_BASELINE_LABEL="${BENCH_INFLUX_BASELINE_LABEL:-$INF_BASELINE}"

# The feature columns of jobs/features_to_influxdb.sql (its sink table's), for both tables of each job.
inf_columns() {
  sed -n '/^CREATE TABLE machine_features (/,/^) WITH (/p' "$BENCH_ROOT/jobs/features_to_influxdb.sql" | sed '1d;$d'
}

inf_kafka_source() { # inf_kafka_source TOPIC_VAR: WITH (…) of a Kafka JSON source from the earliest offset
  echo "('connector' = 'kafka', 'topic' = '\${$1}', 'properties.bootstrap.servers' = '\${KAFKA_BROKERS}',
        'properties.group.id' = '\${GROUP_ID}', 'scan.startup.mode' = 'earliest-offset', 'format' = 'json')"
}

# The prep job: readings → the shipped features query → JSON rows in a Kafka topic.
inf_prep_job() {
  cat <<EOF
CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, seq BIGINT, line VARCHAR, provider VARCHAR, ts TIMESTAMP(3) NOT NULL,
  temperature DOUBLE, vibration DOUBLE, power DOUBLE, load DOUBLE, humidity DOUBLE, noise_level DOUBLE, rpm DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH $(inf_kafka_source SENSOR_TOPIC);
CREATE TABLE features ($(inf_columns))
WITH ('connector' = 'kafka', 'topic' = '\${FEATURE_TOPIC}', 'properties.bootstrap.servers' = '\${KAFKA_BROKERS}',
      'key.column' = 'machine_id');
EOF
  sed -n '/^INSERT INTO machine_features/,$p' "$BENCH_ROOT/jobs/features_to_influxdb.sql" |
    sed 's/^INSERT INTO machine_features/INSERT INTO features/'
}

# The measured job: feature rows from Kafka into InfluxDB (v1), as jobs/features_to_influxdb.sql
# writes them (measurement, tag, time column); batching, gzip and requests in flight at the
# sink's defaults.
inf_sink_job() {
  cat <<EOF
CREATE TABLE features ($(inf_columns)) WITH $(inf_kafka_source FEATURE_TOPIC);
CREATE TABLE machine_features ($(inf_columns))
WITH ('connector' = 'influxdb', 'api' = 'v1', 'url' = '\${INFLUX_URL}', 'database' = '\${INFLUX_DB}',
      'measurement' = 'machine_features', 'tags' = 'machine_id', 'time.column' = 'window_start');
INSERT INTO machine_features SELECT * FROM features;
EOF
}

# ---------------------------------------------------------------------------- the server

inf_server() { INFLUXDB_PORT="$INF_PORT" "$BENCH_ROOT/scripts/influxdb.sh" "$@"; }
inf_pid() { cat "$SPINDLE_CACHE/influxdb/$INF_PORT/influxd.pid"; }

inf_start() {
  if inf_server status >/dev/null 2>&1; then
    log "InfluxDB on port $INF_PORT is already running; it stays running afterwards"
  else
    INF_STARTED=1
    inf_server start >/dev/null
  fi
}

inf_stop_if_started() {
  if [[ "$INF_STARTED" == 1 ]]; then inf_server stop --wipe >&2 || true; fi
}

inf_query() { # inf_query DB Q → the JSON answer
  curl -sS --fail-with-body -G "$INF_URL/query" --data-urlencode "db=$1" --data-urlencode "q=$2"
}
inf_admin() { curl -sS --fail-with-body -XPOST "$INF_URL/query" --data-urlencode "q=$1" >/dev/null; }

# What a database holds, as "count sum_readings count_stddev" (all integers, exact).
inf_stored() {
  inf_query "$1" 'SELECT count(readings), sum(readings), count(temperature_stddev) FROM machine_features' |
    python3 -c 'import json, sys
s = json.load(sys.stdin)["results"][0].get("series")
print(" ".join(str(v) for v in s[0]["values"][0][1:]) if s else "0 0 0")'
}

# ---------------------------------------------------------------------------- preparation

inf_topic_create() {
  kafka_tool topics --bootstrap-server "$KAFKA_ADDR" --create --topic "$1" \
    --partitions "$INF_PARTITIONS" --replication-factor 1 --config retention.ms=-1 >/dev/null
}

inf_prepare() {
  local readings="$INF_DATA/readings.err" prep="$INF_DATA/prep.err"
  INF_READ_TOPIC="bench-influx-$BENCH_RUN_ID-readings" INF_TOPIC="bench-influx-$BENCH_RUN_ID-features"
  inf_topic_create "$INF_READ_TOPIC"
  inf_topic_create "$INF_TOPIC"
  "$SPINDLE" simulate --count "$((INF_LINES * 10))" --machines "$INF_MACHINES" --interval 1s --brokers "$KAFKA_ADDR" \
    --topic "$INF_READ_TOPIC" --partitions "$INF_PARTITIONS" --quiet 2>"$readings" ||
    { cat "$readings" >&2; die "filling $INF_READ_TOPIC failed"; }
  inf_prep_job >"$INF_DATA/prep.sql"
  inf_sink_job >"$INF_DATA/sink.sql"
  (cd "$INF_DATA" && KAFKA_BROKERS="$KAFKA_ADDR" SENSOR_TOPIC="$INF_READ_TOPIC" FEATURE_TOPIC="$INF_TOPIC" \
    GROUP_ID="bench-influx-$BENCH_RUN_ID-prep" "$SPINDLE" run prep.sql --until-idle --side-outputs side-prep) \
    2>"$prep" || { tail -n 20 "$prep" >&2; die "the prep job failed"; }
  topic_delete "$INF_READ_TOPIC"
  INF_N="$(topic_record_count "$INF_TOPIC")"
  is_true "$INF_N > 0.9 * $INF_LINES" || die "the features topic holds $INF_N rows, expected about $INF_LINES"
  log "features topic $INF_TOPIC: $INF_N rows ($(grep -a '^run: ' "$prep" | tail -n 1))"
  inf_capture
}

# The sink's lines: one run against the capture endpoint, cut into compressed request bodies.
inf_capture() {
  local port=$((INF_PORT + 10)) cap_pid err="$INF_DATA/capture.err" lines
  python3 "$BENCH_ROOT/scripts/bench/influx_capture.py" "$port" "$INF_DATA/lines.lp" 2>"$INF_DATA/capture-server.err" &
  cap_pid=$!
  local deadline=$((SECONDS + 10))
  until curl -s -o /dev/null "http://127.0.0.1:$port/ping"; do
    ((SECONDS < deadline)) || die "the capture endpoint did not start"
    sleep 0.1
  done
  inf_spindle_once capture "http://127.0.0.1:$port" x "$err" "$INF_DATA/capture.time"
  kill -TERM "$cap_pid"
  wait "$cap_pid" || true
  lines="$(wc -l <"$INF_DATA/lines.lp")"
  [[ "$lines" == "$INF_N" ]] || die "captured $lines lines, expected $INF_N"
  rm -rf "$INF_DATA/bodies" && mkdir -p "$INF_DATA/bodies"
  split -l "$INF_BATCH" -d -a 5 "$INF_DATA/lines.lp" "$INF_DATA/bodies/b"
  gzip -1 "$INF_DATA/bodies/"b*
  INF_BODIES="$(find "$INF_DATA/bodies" -name 'b*.gz' | wc -l)"
  INF_LP_BYTES="$(stat -c %s "$INF_DATA/lines.lp")"
  INF_GZ_BYTES="$(find "$INF_DATA/bodies" -name 'b*.gz' -printf '%s\n' | awk '{ s += $1 } END { print s }')"
  INF_CAPTURE_SINK="$(grep -a -o 'influxdb sink .*' "$err" | tail -n 1)"
  log "captured $lines lines ($INF_LP_BYTES bytes) → $INF_BODIES bodies of $INF_BATCH lines ($INF_GZ_BYTES bytes gzipped)"
}

# inf_spindle_once TAG URL DB ERR TIMEFILE [BINARY]: one run of the measured job.
inf_spindle_once() {
  (cd "$INF_DATA" && KAFKA_BROKERS="$KAFKA_ADDR" FEATURE_TOPIC="$INF_TOPIC" GROUP_ID="bench-influx-$BENCH_RUN_ID-$1" \
    INFLUX_URL="$2" INFLUX_DB="$3" run_timed "$5" "${6:-$SPINDLE}" run sink.sql --until-idle --side-outputs "side-$1") \
    2>"$4" || { tail -n 20 "$4" >&2; die "spindle run ($1) failed"; }
}

# ---------------------------------------------------------------------------- rounds

# inf_check DB WHO ROUND: the database holds exactly the topic's rows, as the first run's did.
inf_check() {
  local got
  got="$(inf_stored "$1")"
  [[ "${got%% *}" == "$INF_N" ]] || die "round $3 $2: the database holds ${got%% *} points, expected $INF_N"
  if [[ -z "${INF_STORED:-}" ]]; then
    INF_STORED="$got"
  elif [[ "$got" != "$INF_STORED" ]]; then
    die "round $3 $2: the database holds \"$got\" (count, sum(readings), count(temperature_stddev)), an earlier one \"$INF_STORED\""
  fi
}

# Appends to runs.tsv: round who wall job_s cpu_s rss_kb influxd_cpu_s requests busy load
inf_record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$INF_DATA/runs.tsv"
}

# inf_round_spindle ROUND [WHO BINARY]: the job with this run's spindle (or BINARY, as WHO).
inf_round_spindle() {
  local r="$1" who="${2:-spindle}" bin="${3:-$SPINDLE}"
  local db="${who}_r$1" err="$INF_DATA/r$1-$who.err" tf="$INF_DATA/r$1-$who.time"
  local c0 c1 wall user sys rss sink job_s requests
  inf_admin "CREATE DATABASE $db"
  wait_quiet
  c0="$(proc_cpu_seconds "$(inf_pid)")"
  inf_spindle_once "r$r-$who" "$INF_URL" "$db" "$err" "$tf" "$bin"
  c1="$(proc_cpu_seconds "$(inf_pid)")"
  inf_check "$db" "$who" "$r"
  sink="$(grep -a -o 'influxdb sink .*' "$err" | tail -n 1)"
  [[ "$sink" == *"$INF_N lines; written $INF_N, refused 0"* ]] || die "round $r $who: the sink says: $sink"
  requests="$(sed -n 's/.* \([0-9]*\) requests (.*/\1/p' <<<"$sink")"
  job_s="$(grep -a '^run: ' "$err" | tail -n 1 | sed -n 's/.* seconds=\([0-9.]*\) .*/\1/p')"
  read -r wall user sys rss <"$tf"
  inf_record "$r" "$who" "$wall" "$job_s" "$(calc "$user + $sys")" "$rss" "$(calc "$c1 - $c0")" "$requests" \
    "$QUIET_BUSY" "$(cut -d' ' -f1 /proc/loadavg)"
  log "round $r $who: $(fmt_int "$(calc "$INF_N / $wall")") lines/s (wall $wall s, job ${job_s} s, CPU $(calc "$user + $sys") s, influxd CPU $(calc "$c1 - $c0") s, $requests requests)"
  inf_admin "DROP DATABASE $db"
}

inf_round_reference() {
  local r="$1" db="reference_r$1" tf="$INF_DATA/r$1-reference.time" out="$INF_DATA/r$1-reference.out"
  local c0 c1 wall user sys rss requests
  inf_admin "CREATE DATABASE $db"
  wait_quiet
  c0="$(proc_cpu_seconds "$(inf_pid)")"
  (cd "$INF_DATA/bodies" && find . -name 'b*.gz' | sort | run_timed "$tf" xargs -P "$INF_INFLIGHT" -I{} \
    curl -sS --retry 10 -o {}.answer -w '%{http_code}\n' -XPOST "$INF_URL/write?db=$db&precision=ns" \
    -H 'Content-Type: text/plain; charset=utf-8' -H 'Content-Encoding: gzip' --data-binary @{}) >"$out" 2>&1 ||
    { tail -n 20 "$out" >&2; die "the reference loader failed"; }
  c1="$(proc_cpu_seconds "$(inf_pid)")"
  [[ "$(grep -c '^204$' "$out")" == "$INF_BODIES" ]] || { sort "$out" | uniq -c >&2; die "round $r reference: not every POST answered 204"; }
  requests="$INF_BODIES"
  inf_check "$db" reference "$r"
  read -r wall user sys rss <"$tf"
  inf_record "$r" reference "$wall" - "$(calc "$user + $sys")" "$rss" "$(calc "$c1 - $c0")" "$requests" \
    "$QUIET_BUSY" "$(cut -d' ' -f1 /proc/loadavg)"
  log "round $r reference: $(fmt_int "$(calc "$INF_N / $wall")") lines/s (wall $wall s, influxd CPU $(calc "$c1 - $c0") s)"
  inf_admin "DROP DATABASE $db"
}

# Every round runs each contender once, the order rotating.
inf_rounds() {
  local r who order=(spindle reference)
  [[ -z "$INF_BASELINE" ]] || order+=(baseline)
  : >"$INF_DATA/runs.tsv"
  for r in $(seq 1 "$BENCH_ROUNDS"); do
    for who in "${order[@]}"; do
      case "$who" in
        spindle) inf_round_spindle "$r" ;;
        reference) inf_round_reference "$r" ;;
        baseline) inf_round_spindle "$r" baseline "$INF_BASELINE" ;;
      esac
    done
    order=("${order[@]:1}" "${order[0]}")
  done
}

# ---------------------------------------------------------------------------- report

# Seconds from the job's "running" log line to the sink's closing summary (logged once every
# line is acknowledged), from a run's log: the job's time to its last acknowledged line.
inf_ack_seconds() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | python3 -c 'import sys, datetime
def at(line): return datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
start = end = None
for line in sys.stdin:
    if "running job=" in line and start is None: start = at(line)
    if "influxdb sink " in line: end = at(line)
print("%.3f" % (end - start).total_seconds())'
}
# runs.tsv with the seconds that count: to the last acknowledged line for spindle (column 4 set to
# it), the whole process for the reference.
inf_runs() {
  local r who rest
  while IFS=$'\t' read -r r who rest; do
    if [[ "$who" == reference ]]; then
      printf '%s\t%s\t%s\n' "$r" "$who" "$rest"
    else
      printf '%s\t%s\t%s\n' "$r" "$who" "$rest" | awk -F'\t' -v OFS='\t' -v a="$(inf_ack_seconds "$INF_DATA/r$r-$who.err")" '{ $4 = a; print }'
    fi
  done <"$INF_DATA/runs.tsv"
}

inf_col() { awk -F'\t' -v w="$1" -v c="$2" '$2 == w { print $c }' "$INF_DATA/counted.tsv"; }
# The seconds that count: column 4 (to the last acknowledged line) for spindle, 3 (wall) for the reference.
inf_secs() { awk -F'\t' -v w="$1" '$2 == w { print ($2 == "reference" ? $3 : $4) }' "$INF_DATA/counted.tsv"; }
inf_rates() { inf_secs "$1" | awk -v n="$INF_N" '{ printf "%.1f\n", n / $1 }'; }
inf_ratios() { # inf_ratios [WHO] [COLUMN]: per round, reference seconds / WHO's (default spindle, column 4)
  awk -F'\t' -v w="${1:-spindle}" -v c="${2:-4}" '$2 == w { s[$1] = $c } $2 == "reference" { p[$1] = $3 }
    END { for (r = 1; r in s; r++) if (r in p) printf "%.3f\n", p[r] / s[r] }' "$INF_DATA/counted.tsv"
}

inf_report() {
  local rs rp ratios cs cp rr wr
  inf_runs >"$INF_DATA/counted.tsv"
  cat <<EOF
### Setup

A private InfluxDB ($INF_META_INFLUXD, \`INFLUXDB_PORT=$INF_PORT scripts/influxdb.sh start\`: the test
configuration, WAL and data on the local disk, no authentication) and one Kafka topic of
**$(fmt_int "$INF_N") feature rows** (JSON, $INF_PARTITIONS partitions), made once:

\`\`\`sh
spindle simulate --count $((INF_LINES * 10)) --machines $INF_MACHINES --interval 1s --brokers $KAFKA_ADDR --topic READINGS --partitions $INF_PARTITIONS --quiet
# prep.sql: the features query of jobs/features_to_influxdb.sql (10-second windows per machine), into a Kafka topic
KAFKA_BROKERS=$KAFKA_ADDR SENSOR_TOPIC=READINGS FEATURE_TOPIC=FEATURES GROUP_ID=G spindle run prep.sql --until-idle
\`\`\`

The measured job (\`sink.sql\`, in the raw logs) reads that topic from the earliest offset and
writes every row as one point, as the shipped job does: measurement \`machine_features\`, tag
\`machine_id\`, time \`window_start\`, 29 fields (\`readings\` and \`window_end\` integers, 27 floats;
a missing standard deviation is left out). The sink runs with its defaults: \`batch.max-lines\`
5000, \`batch.max-bytes\` 4MiB, \`batch.interval\` 1s, \`gzip\` true (flate2 level "fast"),
\`max-in-flight\` 4, and the job's \`spindle.sink.flush_interval\` (100ms).

The reference's lines are the sink's own: the job ran once against \`scripts/bench/influx_capture.py\`
(a stand-in \`/write\` that keeps the decompressed bodies): $(fmt_int "$INF_N") lines, $(fmt_int "$INF_LP_BYTES") bytes
($(fmt_int "$(calc "$INF_LP_BYTES / $INF_N")") bytes a line), cut into $INF_BODIES files of $INF_BATCH lines and
compressed with \`gzip -1\` ($(fmt_int "$INF_GZ_BYTES") bytes). The capture run's sink said: \`$INF_CAPTURE_SINK\`.

Per round, each contender writes everything into a fresh database (the order rotating each
round$( [[ -z "$INF_BASELINE" ]] || echo "; \"baseline\" is the same job run by $INF_BASELINE_LABEL")); then \`/query\` must find exactly $(fmt_int "$INF_N") points with the same
\`count(readings)\`, \`sum(readings)\` and \`count(temperature_stddev)\` for both ($INF_STORED):

\`\`\`sh
# spindle: "to last ack" = its "running" log line to the sink's closing summary (Kafka group join,
# reading, encoding, the last write acknowledged); wall = process start to exit
KAFKA_BROKERS=$KAFKA_ADDR FEATURE_TOPIC=FEATURES GROUP_ID=G_r INFLUX_URL=$INF_URL INFLUX_DB=spindle_r \\
  /usr/bin/time -f '%e %U %S %M' spindle run sink.sql --until-idle --side-outputs DIR
# reference: the pre-compressed bodies, $INF_INFLIGHT requests at a time (as the sink's max-in-flight)
find . -name 'b*.gz' | sort | /usr/bin/time -f '%e %U %S %M' xargs -P $INF_INFLIGHT -I{} curl -sS --retry 10 -o {}.answer -w '%{http_code}\\n' \\
  -XPOST '$INF_URL/write?db=reference_r&precision=ns' -H 'Content-Type: text/plain; charset=utf-8' \\
  -H 'Content-Encoding: gzip' --data-binary @{}
\`\`\`

The reference does no encoding and no compression while it is timed (the bodies are ready):
it is the server's ingest ceiling on this machine. curl retries a 500 (InfluxDB 1.x answers 500
"timeout" when a write takes longer than its 10 s write-timeout, as on a starved machine); the
sink retries those too. "requests": the sink's own count (every attempt); for curl the number
of bodies (its retries are not counted). "influxd CPU s" is the server's user+sys CPU
time during the run (from \`/proc/PID/stat\`).

### Results

"lines/s" divides the lines by the seconds that count: for the reference its whole run, for
spindle the time from the job's start (its \`running\` log line, after planning) to the sink's
closing summary, which it logs once every line is acknowledged ("to last ack s"). "wall s" is
spindle's whole process (start to exit). In this run every spindle process then waited ~10 s
for a final Kafka offset commit that was not answered (\`the final offset commit was not answered
in time\`, logged after the sink had closed): a Kafka-source matter, not the sink's, so it is
left out of the headline; the ratio on process wall is given too.

| round | contender | lines/s | to last ack s | wall s | client CPU s | influxd CPU s | requests | CPU busy before, % | load avg (1 min) after |
| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
EOF
  while IFS=$'\t' read -r r who wall ack cpu _ icpu req busy load; do
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$r" "$who" \
      "$(fmt_int "$(calc "$INF_N / $([[ "$who" == reference ]] && echo "$wall" || echo "$ack")")")" \
      "$ack" "$wall" "$(fmt_fixed 2 "$cpu")" "$(fmt_fixed 2 "$icpu")" "$req" "$busy" "$load"
  done <"$INF_DATA/counted.tsv"
  mapfile -t rs < <(inf_rates spindle)
  mapfile -t rp < <(inf_rates reference)
  mapfile -t ratios < <(inf_ratios)
  mapfile -t cs < <(inf_col spindle 7)
  mapfile -t cp < <(inf_col reference 7)
  rr="$(stat_median "${ratios[@]}")"
  mapfile -t wr < <(inf_ratios spindle 3)
  cat <<EOF

| | lines/s, median (min, max; spread) | influxd CPU s, median |
| --- | --- | ---: |
| spindle (sink) | $(summarize fmt_int "${rs[@]}") | $(fmt_fixed 2 "$(stat_median "${cs[@]}")") |
| reference (curl) | $(summarize fmt_int "${rp[@]}") | $(fmt_fixed 2 "$(stat_median "${cp[@]}")") |
EOF
  if [[ -n "$INF_BASELINE" ]]; then
    local rb cb rbr
    mapfile -t rb < <(inf_rates baseline)
    mapfile -t cb < <(inf_col baseline 7)
    mapfile -t rbr < <(inf_ratios baseline)
    echo "| baseline ($INF_BASELINE_LABEL) | $(summarize fmt_int "${rb[@]}") | $(fmt_fixed 2 "$(stat_median "${cb[@]}")") |"
    echo
    echo "Ratio baseline / reference per round: $(printf '%s, ' "${rbr[@]}" | sed 's/, $//'); median $(fmt_fixed 3 "$(stat_median "${rbr[@]}")")."
  fi
  cat <<EOF

Ratio spindle / reference per round (reference seconds / spindle's to last ack): $(printf '%s, ' "${ratios[@]}" | sed 's/, $//');
median **$(fmt_fixed 3 "$rr")**. Aim ≥ 0.8: $(if is_true "$rr >= 0.8"; then echo met; else echo "**missed**"; fi).
On spindle's whole process wall instead: $(printf '%s, ' "${wr[@]}" | sed 's/, $//'); median $(fmt_fixed 3 "$(stat_median "${wr[@]}")").

EOF
}

bench_influxdb() {
  local out="$1"
  section_data influxdb
  INF_DATA="$SECTION_DATA"
  if [[ -z "${BENCH_FROM_RUN:-}" ]]; then
    need curl python3 gzip split xargs
    build_spindle
    BENCH_RUN_ID="$(date +%s)"
    INF_META_STARTED="$(date -u '+%Y-%m-%d %H:%M UTC')"
    INF_META_MACHINE="$(machine_md)"
    INF_META_ROUNDS="$BENCH_ROUNDS"
    INF_META_RUN_DIR="${INF_DATA/#$HOME/\~}"
    ensure_kafka
    inf_start
    trap 'inf_stop_if_started; stop_kafka_if_started' EXIT
    INF_META_INFLUXD="$(influxd version 2>/dev/null | head -n 1)"
    INF_META_VERSIONS="- Spindle: \`$("$SPINDLE" --version 2>/dev/null || echo spindle)\`, $SPINDLE_SOURCE, release build, $(rustc --version)
- $INF_META_INFLUXD (Debian package); $(curl --version | head -n 1 | cut -d' ' -f1-2); Kafka $(kafka_version 2>/dev/null || echo "?")"
    inf_prepare
    inf_rounds
    topic_delete "$INF_TOPIC"
    rm -rf "$INF_DATA/bodies" "$INF_DATA/lines.lp"
    INF_META_LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
    declare -p INF_BASELINE INF_BASELINE_LABEL INF_META_STARTED INF_META_MACHINE INF_META_ROUNDS INF_META_RUN_DIR INF_META_VERSIONS \
      INF_META_INFLUXD INF_META_LOAD_END INF_N INF_LINES INF_MACHINES INF_PARTITIONS INF_PORT INF_URL \
      INF_BATCH INF_INFLIGHT INF_BODIES INF_LP_BYTES INF_GZ_BYTES INF_CAPTURE_SINK INF_STORED \
      KAFKA_ADDR >"$INF_DATA/meta.env"
  fi
  {
    cat <<EOF
## InfluxDB sink: lines per second against the server's ingest ceiling

Written by \`scripts/bench.sh influxdb --rounds $INF_META_ROUNDS\`, started $INF_META_STARTED.

$INF_META_VERSIONS
$INF_META_MACHINE
- Load average when the section ended: $INF_META_LOAD_END
- Raw logs: \`$INF_META_RUN_DIR/\`

Spindle, the broker, InfluxDB and curl share the machine's 2 cores: compare figures within a
round.

EOF
    inf_report
    section_notes influxdb
  } >"$out"
}
