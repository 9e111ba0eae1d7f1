# shellcheck shell=bash
# scripts/bench/queries.sh — section "queries" of scripts/bench.sh (sourced by it): history
# queries, `spindle query` and `POST /api/query` of `spindle server` against DuckDB on the same
# Parquet files (issues 6 and 8).
#
# The history is the one the `spark` section leaves: the features of its last 10 M-reading replay
# ($BENCH_RUN_DIR/spark/history/features) and the alerts of its last anomaly-job run
# (…/history/alerts); BENCH_HISTORY=DIR uses another folder with those two tables (e.g. an
# earlier run's; BENCH_HISTORY_ORIGIN says in the report where it came from); BENCH_QUERY_HISTORY=generate (or no spark history and no BENCH_HISTORY) makes
# one like it first (qry_generate_history, a few minutes: Kafka, the features job on 10 M
# readings, the anomaly job on 1 M). Per round, every query runs in each of the four ways, the order rotating:
#   cli     spindle query --history H --format csv SQL           (a whole process)
#   duckdb  python duckdb_query.py run H SQL OUT                 (a whole process; its own timer
#                                                                 gives the in-process query time)
#   server  curl POST /api/query (Accept: text/csv) to one `spindle server --history H`
# and each answer is compared with DuckDB's (rows and values).

# shellcheck disable=SC2153 # BENCH_RUN_DIR and BENCH_ROUNDS come from bench.sh
QRY_PORT="${BENCH_SERVER_PORT:-18480}"
QRY_MACHINE="${BENCH_QUERY_MACHINE:-m-0042}"
QRY_NAMES=(last_hour daily_avg top_anomalies percentiles features_alerts)

qry_label() {
  case "$1" in
    last_hour) echo "last hour of one machine" ;;
    daily_avg) echo "per-machine daily averages" ;;
    top_anomalies) echo "top anomalies" ;;
    percentiles) echo "a percentile (p99) per sensor" ;;
    features_alerts) echo "features joined with alerts" ;;
  esac
}

# The SQL, the same text for both engines.
qry_sql() {
  case "$1" in
    last_hour) cat <<EOF
SELECT window_start, readings, temperature_avg, temperature_max, vibration_avg, vibration_max, power_avg, rpm_avg
FROM features
WHERE machine_id = '$QRY_MACHINE'
  AND window_start >= (SELECT max(window_start) FROM features) - INTERVAL '1 hour'
ORDER BY window_start
EOF
      ;;
    daily_avg) cat <<'EOF'
SELECT machine_id, date_trunc('day', window_start) AS day, sum(readings) AS readings,
  avg(temperature_avg) AS temperature, avg(vibration_avg) AS vibration, avg(power_avg) AS power,
  avg(load_avg) AS load, avg(humidity_avg) AS humidity, avg(noise_level_avg) AS noise_level, avg(rpm_avg) AS rpm
FROM features
GROUP BY machine_id, date_trunc('day', window_start)
ORDER BY machine_id, day
EOF
      ;;
    top_anomalies) cat <<'EOF'
SELECT machine_id, ts, model, score, threshold
FROM alerts
ORDER BY score DESC, machine_id, ts
LIMIT 20
EOF
      ;;
    percentiles) cat <<'EOF'
SELECT
  percentile_cont(0.99) WITHIN GROUP (ORDER BY temperature_max) AS temperature_p99,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY vibration_max) AS vibration_p99,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY power_max) AS power_p99,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY load_max) AS load_p99,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY humidity_max) AS humidity_p99,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY noise_level_max) AS noise_level_p99,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY rpm_max) AS rpm_p99
FROM features
EOF
      ;;
    features_alerts) cat <<'EOF'
SELECT a.model, count(*) AS alerts, avg(f.vibration_max) AS vibration_max, avg(f.temperature_avg) AS temperature_avg,
  avg(f.power_stddev) AS power_stddev
FROM alerts a
JOIN features f ON f.machine_id = a.machine_id AND a.ts >= f.window_start AND a.ts < f.window_end
GROUP BY a.model
ORDER BY a.model
EOF
      ;;
  esac
}

# Generates a history like the spark section's into DIR (BENCH_QUERY_HISTORY=generate, or when
# there is neither BENCH_HISTORY nor a spark section's history): features of SPK_COUNT readings
# (10 M, SPK_MACHINES machines, SPK_PARTITIONS partitions) from jobs/factory_features.sql, and the
# alerts of jobs/anomaly_detection.sql (alerts to Parquet) over SPK_MODELS_COUNT readings (1 M).
# The simulator's start is fixed, so both cover the same simulated minutes from the same start.
qry_generate_history() {
  local dir="$1" run id
  SPK_DATA="$QRY_DATA"
  ensure_kafka
  id="$(date +%s)"
  rm -rf "$dir" && mkdir -p "$dir"
  for run in features anomaly; do
    local topic="bench-qry-$id-$run" count="$SPK_COUNT" job="$BENCH_ROOT/$SPK_JOB_REL" err="$QRY_DATA/history-$run.err"
    if [[ "$run" == anomaly ]]; then count="$SPK_MODELS_COUNT" job="$(spk_models_job)"; fi
    spk_fill "$topic" "$count"
    (cd "$QRY_DATA" && KAFKA_BROKERS="$KAFKA_ADDR" SENSOR_TOPIC="$topic" GROUP_ID="$topic" HISTORY_PATH="$QRY_DATA/history-$run" \
      "$SPINDLE" run "$job" --until-idle --side-outputs "$QRY_DATA/side-$run") 2>"$err" ||
      { tail -n 20 "$err" >&2; die "spindle run ($run) failed"; }
    log "history $run: $(grep -a '^run: records_in=' "$err" | tail -n 1)"
    if [[ "$run" == features ]]; then mv "$QRY_DATA/history-$run/features" "$dir/"; else mv "$QRY_DATA/history-$run/alerts" "$dir/"; fi
    rm -rf "$QRY_DATA/history-$run" "$QRY_DATA/side-$run"
    topic_delete "$topic"
  done
  QRY_HISTORY_ORIGIN="generated for this run (\`BENCH_QUERY_HISTORY=generate\`: \`spindle simulate --count $(fmt_int "$SPK_COUNT") --machines $(fmt_int "$SPK_MACHINES") --partitions $SPK_PARTITIONS\` into a topic, \`spindle run jobs/factory_features.sql --until-idle\` with \`HISTORY_PATH\`; the alerts: \`jobs/anomaly_detection.sql\` with its alerts to Parquet over $(fmt_int "$SPK_MODELS_COUNT") readings, as in the spark section)"
}

# Sets SPK_PY to a Python with DuckDB (PyPI, the version the spark section pins) and pytz (DuckDB
# needs it to hand TIMESTAMPTZ values to Python): a virtualenv of its own, lighter than
# spark_install's (no pyspark, no Maven), since this section needs only DuckDB.
qry_duckdb_install() {
  local venv="$SPINDLE_CACHE/duckdb/venv-$SPK_DUCKDB_VERSION"
  local reqs="duckdb==$SPK_DUCKDB_VERSION pytz==$SPK_PYTZ_VERSION"
  need python3
  if [[ "$(cat "$venv/.installed" 2>/dev/null)" != "$reqs" ]]; then
    log "installing $reqs into $venv (PyPI) ..."
    mkdir -p "$(dirname "$venv")"
    [[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv)"
    # shellcheck disable=SC2086 # one word per requirement
    "$venv/bin/pip" install -q $reqs >&2 || die "pip install failed"
    echo "$reqs" >"$venv/.installed"
  fi
  SPK_PY="$venv/bin/python"
}

# queries.tsv: round query way ms rows check busy
qry_rec() { local IFS=$'\t'; echo "$*" >>"$QRY_DATA/queries.tsv"; }

# Milliseconds between two $EPOCHREALTIME readings.
qry_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'; }

qry_cli() {
  local r="$1" q="$2" out="$QRY_DATA/r$1-$2-cli.csv" sql t0 t1
  sql="$(qry_sql "$q")"
  t0="$EPOCHREALTIME"
  "$SPINDLE" query --history "$QRY_HISTORY" --format csv "$sql" >"$out" 2>"$out.err" ||
    { cat "$out.err" >&2; die "spindle query $q failed"; }
  t1="$EPOCHREALTIME"
  qry_rec "$r" "$q" cli "$(qry_ms "$t0" "$t1")" "$(($(wc -l <"$out") - 1))" "$(qry_check "$r" "$q" cli)" "$QUIET_BUSY"
}

qry_server() {
  local r="$1" q="$2" out="$QRY_DATA/r$1-$2-server.csv" secs body
  body="$("$SPK_PY" -c 'import json, sys; print(json.dumps({"sql": sys.stdin.read()}))' <<<"$(qry_sql "$q")")"
  secs="$(curl -sS -o "$out" -w '%{time_total}' -X POST -H 'Content-Type: application/json' -H 'Accept: text/csv' \
    --data-binary "$body" "http://127.0.0.1:$QRY_PORT/api/query")" || die "POST /api/query $q failed"
  grep -q '"error"' "$out" 2>/dev/null && { cat "$out" >&2; die "POST /api/query $q answered an error"; }
  qry_rec "$r" "$q" server "$(calc "$secs * 1000")" "$(($(wc -l <"$out") - 1))" "$(qry_check "$r" "$q" server)" "$QUIET_BUSY"
}

qry_duckdb() {
  local r="$1" q="$2" out="$QRY_DATA/r$1-$2-duckdb.csv" sql line t0 t1
  sql="$(qry_sql "$q")"
  t0="$EPOCHREALTIME"
  line="$("$SPK_PY" "$BENCH_ROOT/scripts/bench/duckdb_query.py" run "$QRY_HISTORY" "$sql" "$out")" || die "duckdb $q failed"
  t1="$EPOCHREALTIME"
  qry_rec "$r" "$q" duckdb "$(qry_ms "$t0" "$t1")" "$(spk_kv rows "$line")" - "$QUIET_BUSY"
  qry_rec "$r" "$q" duckdb_inproc "$(spk_kv query_ms "$line")" "$(spk_kv rows "$line")" - "$QUIET_BUSY"
}

# The check of a Spindle answer against DuckDB's (run after it in this round, or before): "same"
# or "DIFFER"; checked again at the end of the round when DuckDB ran later.
qry_check() {
  local d="$QRY_DATA/r$1-$2-duckdb.csv"
  if [[ -f "$d" ]]; then
    if "$SPK_PY" "$BENCH_ROOT/scripts/bench/duckdb_query.py" compare "$QRY_DATA/r$1-$2-$3.csv" "$d" >"$QRY_DATA/r$1-$2-$3.cmp"; then
      echo same
    else
      echo DIFFER
    fi
  else
    echo later
  fi
}

qry_round() {
  local r="$1" q i way ways=(cli duckdb server)
  for q in "${QRY_NAMES[@]}"; do
    wait_quiet
    for i in 0 1 2; do
      way="${ways[$(((i + r - 1) % 3))]}"
      "qry_$way" "$r" "$q"
    done
    # Checks left for later (DuckDB ran after Spindle): do them now.
    awk -F'\t' -v r="$r" -v q="$q" 'BEGIN { OFS = "\t" } $1 == r && $2 == q && $6 == "later" { print $3 }' \
      "$QRY_DATA/queries.tsv" | while read -r way; do
      local res
      res="$(qry_check "$r" "$q" "$way")"
      awk -F'\t' -v r="$r" -v q="$q" -v w="$way" -v res="$res" 'BEGIN { OFS = "\t" }
        $1 == r && $2 == q && $3 == w { $6 = res } { print }' "$QRY_DATA/queries.tsv" >"$QRY_DATA/queries.tsv.tmp"
      mv "$QRY_DATA/queries.tsv.tmp" "$QRY_DATA/queries.tsv"
    done
    log "round $r $q: $(awk -F'\t' -v r="$r" -v q="$q" '$1 == r && $2 == q { printf "%s %.0f ms (%s rows, %s); ", $3, $4, $5, $6 }' "$QRY_DATA/queries.tsv")"
  done
}

qry_server_start() {
  mkdir -p "$QRY_DATA/server-state"
  "$SPINDLE" server --listen "127.0.0.1:$QRY_PORT" --state-dir "$QRY_DATA/server-state" --history "$QRY_HISTORY" \
    --query-max-rows 1000000 --query-timeout 600s --query-memory 4GiB >"$QRY_DATA/server.out" 2>"$QRY_DATA/server.err" &
  QRY_SERVER_PID=$!
  local i
  for i in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$QRY_PORT/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$QRY_SERVER_PID" 2>/dev/null || { cat "$QRY_DATA/server.err" >&2; die "spindle server exited"; }
    sleep 0.1
  done
  die "spindle server did not answer /healthz within 10 s"
}

qry_server_stop() {
  [[ -n "${QRY_SERVER_PID:-}" ]] || return 0
  kill -TERM "$QRY_SERVER_PID" 2>/dev/null || true
  wait "$QRY_SERVER_PID" 2>/dev/null || true
  QRY_SERVER_PID=""
}

# qry_ratio QUERY WAY_A WAY_B: "**median×** (per round) aim" of A's time / B's time
qry_ratio() {
  local -a v
  mapfile -t v < <(awk -F'\t' -v q="$1" -v a="$2" -v b="$3" '$2 == q && $3 == a { x[$1] = $4 } $2 == q && $3 == b { y[$1] = $4 }
    END { for (r = 1; r in x; r++) if (r in y) printf "%.2f\n", x[r] / y[r] }' "$QRY_DATA/queries.tsv")
  printf '**%s×** (%s) — %s' "$(fmt_fixed 2 "$(stat_median "${v[@]}")")" "$(spk_list "${v[@]}")" \
    "$(spk_aim "$(stat_median "${v[@]}") <= 1.2")"
}

qry_report() {
  local q way r origin="${QRY_HISTORY_ORIGIN:-}"
  # shellcheck disable=SC2016 # backquotes are Markdown
  [[ -n "$origin" ]] || origin='the `spark` section'"'"'s last 10 M-reading replay and the alerts of its anomaly-job run'
  local -a v
  cat <<EOF
### The queries

Over a history of 10 M readings (\`features\`: $(fmt_int "$QRY_FEATURE_ROWS") rows in $QRY_FEATURE_FILES Parquet files,
Hive-partitioned by date and hour; \`alerts\`: $(fmt_int "$QRY_ALERT_ROWS") rows), $origin.
The SQL text is the same for both engines ($QRY_MACHINE is one machine):

EOF
  for q in "${QRY_NAMES[@]}"; do
    # shellcheck disable=SC2016 # backquotes are Markdown
    printf -- '- **%s** (`%s`):\n\n```sql\n%s\n```\n\n' "$(qry_label "$q")" "$q" "$(qry_sql "$q")"
  done
  cat <<EOF
How each is run (per round every query in each way, the order rotating; files in the page cache):

\`\`\`sh
spindle query --history H --format csv "SQL" >out.csv                      # "cli": process wall time
python scripts/bench/duckdb_query.py run H "SQL" out.csv                   # "duckdb": process wall time; it also
                                                                           #   reports execute+fetch alone ("duckdb in-process")
spindle server --listen 127.0.0.1:$QRY_PORT --history H --query-max-rows 1000000 --query-timeout 600s --query-memory 4GiB &
curl -X POST -H 'Accept: text/csv' -d '{"sql": "SQL"}' http://127.0.0.1:$QRY_PORT/api/query   # "server": curl's time_total
\`\`\`

DuckDB's views are \`read_parquet('H/TABLE/**/*.parquet', hive_partitioning = true)\`, one per table
folder, as \`spindle query\` registers every folder; TimeZone UTC. Both processes pay their start
(spindle: listing the history, inferring the schema; python: the interpreter and \`import duckdb\`,
≈ 0.1–0.2 s); the server lists the history again for every query, so "server" is compared with
DuckDB's in-process time (a warm process on each side). Every Spindle answer (CLI and server) is
compared with DuckDB's: same rows, same order, values within 1e-6 relative (DataFusion 55's
\`percentile_cont\` quantises its interpolation weight to 1e-6 — \`datafusion-functions-aggregate\`
\`percentile_cont.rs\`, \`INTERPOLATION_PRECISION\` —, so its p99 can be off by up to 1e-6 of the gap
between the two neighbouring values: 92.2459999 where the exact answer is 92.246).

| query | way | ms, median (min, max; spread) | rows | same as DuckDB (rounds) |
| --- | --- | --- | ---: | --- |
EOF
  for q in "${QRY_NAMES[@]}"; do
    for way in cli server duckdb duckdb_inproc; do
      mapfile -t v < <(awk -F'\t' -v q="$q" -v w="$way" '$2 == q && $3 == w { print $4 }' "$QRY_DATA/queries.tsv")
      printf '| %s | %s | %s | %s | %s |\n' "$q" "$way" "$(summarize fmt_int "${v[@]}")" \
        "$(awk -F'\t' -v q="$q" -v w="$way" '$2 == q && $3 == w { print $5; exit }' "$QRY_DATA/queries.tsv")" \
        "$(awk -F'\t' -v q="$q" -v w="$way" '$2 == q && $3 == w { s = s sep $6; sep = ", " } END { print s }' "$QRY_DATA/queries.tsv")"
    done
  done
  cat <<EOF

Time ratios (median of the per-round ratios, per round in brackets; aim ≤ 1.2× DuckDB on each
query). The first column compares two whole processes (DuckDB's includes starting Python and
importing duckdb, ≈ 0.2 s: it flatters Spindle on short queries); the second compares the whole
\`spindle query\` process with DuckDB's query alone (it handicaps Spindle by its process start);
the third two warm processes, the server's answer over HTTP against DuckDB's execute+fetch.

| query | \`spindle query\` / DuckDB process | \`spindle query\` / DuckDB in-process | \`POST /api/query\` / DuckDB in-process |
| --- | --- | --- | --- |
EOF
  for q in "${QRY_NAMES[@]}"; do
    printf '| %s | %s | %s | %s |\n' "$(qry_label "$q")" "$(qry_ratio "$q" cli duckdb)" \
      "$(qry_ratio "$q" cli duckdb_inproc)" "$(qry_ratio "$q" server duckdb_inproc)"
  done
  echo
}

bench_queries() {
  local out="$1" r
  section_data queries
  QRY_DATA="$SECTION_DATA"
  # shellcheck source=scripts/bench/spark.sh
  source "$BENCH_ROOT/scripts/bench/spark.sh"   # spk_kv, spk_aim, spk_fill, spk_models_job
  if [[ -z "${BENCH_FROM_RUN:-}" ]]; then
    need curl
    build_spindle
    qry_duckdb_install
    QRY_HISTORY="${BENCH_HISTORY:-$BENCH_RUN_DIR/spark/history}"
    QRY_HISTORY_ORIGIN="the \`spark\` section's last 10 M-reading replay and the alerts of its anomaly-job run"
    [[ -n "${BENCH_HISTORY:-}" ]] && QRY_HISTORY_ORIGIN="${BENCH_HISTORY_ORIGIN:-read from \`BENCH_HISTORY\`}"
    if [[ "${BENCH_QUERY_HISTORY:-}" == generate || ( -z "${BENCH_HISTORY:-}" && ! -d "$QRY_HISTORY/features" ) ]]; then
      QRY_HISTORY="$QRY_DATA/history"
      qry_generate_history "$QRY_HISTORY"
    fi
    [[ -n "$(find "$QRY_HISTORY/features" "$QRY_HISTORY/alerts" -name '*.parquet' -print -quit 2>/dev/null)" &&
      -n "$(find "$QRY_HISTORY/alerts" -name '*.parquet' -print -quit 2>/dev/null)" ]] ||
      die "no history with features/ and alerts/ at $QRY_HISTORY: run the spark section first (scripts/bench.sh spark queries) or set BENCH_HISTORY"
    QRY_HISTORY="$(cd "$QRY_HISTORY" && pwd)"
    QRY_META_STARTED="$(date -u '+%Y-%m-%d %H:%M UTC')"
    QRY_META_MACHINE="$(machine_md)"
    QRY_META_ROUNDS="$BENCH_ROUNDS"
    QRY_META_RUN_DIR="${QRY_DATA/#$HOME/\~}"
    QRY_META_VERSIONS="- Spindle: \`$("$SPINDLE" --version 2>/dev/null || echo spindle)\`, $SPINDLE_SOURCE, release build
- DuckDB $("$SPK_PY" -c 'import duckdb; print(duckdb.__version__)') (PyPI), Python $("$SPK_PY" -c 'import platform; print(platform.python_version())')"
    QRY_FEATURE_ROWS="$("$SPK_PY" -c "import duckdb; print(duckdb.connect().execute(\"SELECT count(*) FROM read_parquet('$QRY_HISTORY/features/**/*.parquet')\").fetchone()[0])")"
    QRY_ALERT_ROWS="$("$SPK_PY" -c "import duckdb; print(duckdb.connect().execute(\"SELECT count(*) FROM read_parquet('$QRY_HISTORY/alerts/**/*.parquet')\").fetchone()[0])")"
    QRY_FEATURE_FILES="$(find "$QRY_HISTORY/features" -name '*.parquet' | wc -l)"
    : >"$QRY_DATA/queries.tsv"
    qry_server_start
    trap 'qry_server_stop; stop_kafka_if_started' EXIT
    for r in $(seq 1 "$BENCH_ROUNDS"); do qry_round "$r"; done
    qry_server_stop
    trap stop_kafka_if_started EXIT
    QRY_META_LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
    declare -p QRY_META_STARTED QRY_META_MACHINE QRY_META_ROUNDS QRY_META_RUN_DIR QRY_META_VERSIONS QRY_META_LOAD_END \
      QRY_HISTORY QRY_HISTORY_ORIGIN QRY_FEATURE_ROWS QRY_ALERT_ROWS QRY_FEATURE_FILES QRY_PORT QRY_MACHINE >"$QRY_DATA/meta.env"
  fi
  if grep -q $'\tDIFFER\t' "$QRY_DATA/queries.tsv"; then
    log "some Spindle answers DIFFER from DuckDB's: see $QRY_DATA/*.cmp"
  fi
  {
    cat <<EOF
## History queries: \`spindle query\` and \`POST /api/query\` vs DuckDB

Written by \`scripts/bench.sh queries --rounds $QRY_META_ROUNDS\`, started $QRY_META_STARTED.

$QRY_META_VERSIONS
$QRY_META_MACHINE
- Load average when the section ended: $QRY_META_LOAD_END
- Raw logs and every answer: \`$QRY_META_RUN_DIR/\`

EOF
    qry_report
    section_notes queries
  } >"$out"
  if grep -q $'\tDIFFER\t' "$QRY_DATA/queries.tsv"; then
    die "some Spindle answers differ from DuckDB's (the section was still written; see $QRY_DATA/*.cmp)"
  fi
}
