# shellcheck shell=bash
# scripts/bench/lib.sh — helpers shared by the sections of scripts/bench.sh (sourced, not run).
#
# A section NAME lives in scripts/bench/NAME.sh and defines `bench_NAME OUT_MD`: it runs its
# measurements (raw logs under $BENCH_RUN_DIR/NAME/) and writes its Markdown to OUT_MD, which
# bench.sh then splices into docs/BENCHMARKS.md between
#   <!-- bench:NAME:start --> and <!-- bench:NAME:end -->
# leaving every other section of the file alone.

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || die "'$c' is not installed"; done
}

# ---------------------------------------------------------------------------- statistics
# All take numbers as arguments and print one number.

stat_median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
stat_min() { printf '%s\n' "$@" | sort -g | head -n 1; }
stat_max() { printf '%s\n' "$@" | sort -g | tail -n 1; }
# (max - min) / median, in percent.
stat_spread_pct() {
  local med lo hi
  med="$(stat_median "$@")" lo="$(stat_min "$@")" hi="$(stat_max "$@")"
  awk -v m="$med" -v l="$lo" -v h="$hi" 'BEGIN { if (m == 0) print "nan"; else printf "%.1f", 100 * (h - l) / m }'
}

# Formatting: fmt_int 1234567 -> 1,234,567 ; fmt_fixed 2 3.14159 -> 3.14 ; fmt_m 2345678 -> 2.35 M
fmt_int() { awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); n = ""; neg = (substr(s, 1, 1) == "-");
  if (neg) s = substr(s, 2); while (length(s) > 3) { n = "," substr(s, length(s) - 2) n; s = substr(s, 1, length(s) - 3) }
  print (neg ? "-" : "") s n }'; }
fmt_fixed() { awk -v d="$1" -v x="$2" 'BEGIN { printf "%.*f\n", d, x }'; }
fmt_m() { awk -v x="$1" 'BEGIN { printf "%.2f M\n", x / 1e6 }'; }
calc() { awk "BEGIN { printf \"%.6g\n\", $* }"; }
# True (exit 0) when the awk condition holds, e.g. `is_true "$ratio >= 0.9"`.
is_true() { awk "BEGIN { exit !($*) }"; }

# "median (min–max, spread ±x%)" for a list of numbers, formatted with FORMATTER (a function).
summarize() {
  local formatter="$1"; shift
  local med lo hi sp
  med="$(stat_median "$@")" lo="$(stat_min "$@")" hi="$(stat_max "$@")" sp="$(stat_spread_pct "$@")"
  printf '%s (min %s, max %s; spread %s%%)' "$("$formatter" "$med")" "$("$formatter" "$lo")" "$("$formatter" "$hi")" "$sp"
}

# ---------------------------------------------------------------------------- timing
# run_timed TIMEFILE CMD... : runs CMD under GNU time; TIMEFILE gets "wall user sys maxrss_kb".
run_timed() {
  local tf="$1"; shift
  /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@"
}

# CPU seconds (user+sys) a live process has used so far (its threads included); 0 if gone.
proc_cpu_seconds() {
  local pid="$1" ticks
  ticks="$(getconf CLK_TCK)"
  if [[ -r "/proc/$pid/stat" ]]; then
    # Fields after the ")" that closes the command name: utime is the 12th, stime the 13th.
    sed 's/^.*) //' "/proc/$pid/stat" | awk -v t="$ticks" '{ printf "%.2f\n", ($12 + $13) / t }'
  else
    echo 0
  fi
}

# ---------------------------------------------------------------------------- environment

# Percentage of all CPUs busy (not idle, not iowait) over the next $1 seconds (default 1).
cpu_busy_pct() {
  local a b
  a="$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)"
  sleep "${1:-1}"
  b="$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)"
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
    busy = y[1] - x[1]; idle = y[2] - x[2]; t = busy + idle
    printf "%.0f\n", (t > 0 ? 100 * busy / t : 0) }'
}

# Before a measured run: wait until the machine is quiet (under BENCH_QUIET_PCT percent busy,
# default 10, for one second), for at most BENCH_QUIET_TIMEOUT seconds (default 60; 0 = do not
# wait). Sets QUIET_BUSY to the last busy percentage seen (recorded next to the figures).
wait_quiet() {
  local limit="${BENCH_QUIET_PCT:-10}" timeout="${BENCH_QUIET_TIMEOUT:-60}" start=$SECONDS warned=0
  while :; do
    QUIET_BUSY="$(cpu_busy_pct 1)"
    ((QUIET_BUSY <= limit)) && return 0
    ((SECONDS - start >= timeout)) && { log "machine still ${QUIET_BUSY}% busy after ${timeout}s; measuring anyway"; return 0; }
    ((warned)) || { log "machine ${QUIET_BUSY}% busy (other processes); waiting up to ${timeout}s for it to quiet down"; warned=1; }
    sleep 2
  done
}

machine_md() {
  local cpu hyper mem
  cpu="$(grep -m 1 '^model name' /proc/cpuinfo 2>/dev/null | sed 's/^[^:]*: *//')"
  hyper=""
  if command -v lscpu >/dev/null 2>&1; then
    hyper="$(lscpu 2>/dev/null | awk -F: '/^Hypervisor vendor/ { gsub(/^ +/, "", $2); print $2 }')"
  fi
  mem="$(free -g | awk '/^Mem:/ { print $2 " GiB total, " $7 " GiB available" }')"
  echo "- CPU: ${cpu:-unknown}${hyper:+ (virtual machine, hypervisor: $hyper)}, \`nproc\` = $(nproc)"
  echo "- Memory (\`free -g\`): $mem"
  echo "- Kernel: $(uname -sr)"
  echo "- Load average when the section started: $(cut -d' ' -f1-3 /proc/loadavg)"
}

git_commit() {
  local c
  c="$(git -C "$BENCH_ROOT" rev-parse --short=12 HEAD 2>/dev/null)" || { echo unknown; return; }
  if [[ -n "$(git -C "$BENCH_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    c="$c + uncommitted changes"
  fi
  echo "$c"
}

# ---------------------------------------------------------------------------- spindle and kafka

# Builds the spindle binary (release) once per bench.sh run; sets SPINDLE and SPINDLE_SOURCE.
# From the working tree, or with BENCH_REV=<rev> from a clean export of that commit (in
# $SPINDLE_CACHE/bench-src/, outside the clone), e.g. while the working tree is mid-edit.
# shellcheck disable=SC2034 # SPINDLE_SOURCE and SPINDLE_SRC_DIR are read by the sections
build_spindle() {
  if [[ -n "${SPINDLE:-}" ]]; then
    [[ -x "$SPINDLE" ]] || die "SPINDLE=$SPINDLE is not an executable"
    # Set by an earlier section of this run (build_spindle copies its build): keep its source.
    SPINDLE_SOURCE="${SPINDLE_SOURCE:-prebuilt binary $SPINDLE}"
    return 0
  fi
  need cargo
  local src="$BENCH_ROOT" sha
  if [[ -n "${BENCH_REV:-}" ]]; then
    sha="$(git -C "$BENCH_ROOT" rev-parse --verify "${BENCH_REV}^{commit}")" || die "unknown revision $BENCH_REV"
    src="$SPINDLE_CACHE/bench-src/$sha"
    if [[ ! -f "$src/Cargo.toml" ]]; then
      log "exporting commit ${sha:0:12} to $src"
      rm -rf "$src.tmp" && mkdir -p "$src.tmp"
      git -C "$BENCH_ROOT" archive "$sha" | tar -x -C "$src.tmp"
      mv "$src.tmp" "$src"
    fi
    SPINDLE_SOURCE="commit ${sha:0:12} (clean export, BENCH_REV=$BENCH_REV)"
    SPINDLE_SRC_DIR="$src"
  else
    SPINDLE_SOURCE="working tree at commit $(git_commit)"
  fi
  # --workspace, never -p: `-p spindle-engine` unifies features differently from the
  # workspace builds sharing this target folder and rebuilds DataFusion and its dependencies.
  log "building spindle (cargo build --release --workspace --bin spindle) in $src ..."
  (cd "$src" && cargo build --release --workspace --bin spindle) >&2 \
    || die "cargo build failed (BENCH_REV=HEAD builds the last commit instead of the working tree)"
  SPINDLE="$CARGO_TARGET_DIR/release/spindle"
  [[ -x "$SPINDLE" ]] || die "no binary at $SPINDLE"
  # Keep a copy: another build into the shared target folder must not swap it mid-run.
  mkdir -p "$BENCH_RUN_DIR"
  cp -f "$SPINDLE" "$BENCH_RUN_DIR/spindle"
  SPINDLE="$BENCH_RUN_DIR/spindle"
}

# Starts Kafka unless it runs already (then it is left running at exit); sets KAFKA_ADDR.
KAFKA_STARTED_BY_BENCH=0
ensure_kafka() {
  [[ -n "${KAFKA_ADDR:-}" ]] && return 0
  if "$BENCH_ROOT/scripts/kafka.sh" status >/dev/null 2>&1; then
    log "Kafka is already running; it stays running afterwards"
  else
    KAFKA_STARTED_BY_BENCH=1
    log "starting Kafka (stopped again when bench.sh exits)"
  fi
  KAFKA_ADDR="$("$BENCH_ROOT/scripts/kafka.sh" start | tail -n 1)"
}

stop_kafka_if_started() {
  if [[ "$KAFKA_STARTED_BY_BENCH" == 1 ]]; then
    "$BENCH_ROOT/scripts/kafka.sh" stop >&2 || true
  fi
}

kafka_tool() { "$BENCH_ROOT/scripts/kafka.sh" tool "$@"; }

# The broker's pid and its partition folders (for CPU and on-disk size figures).
kafka_broker_pid() {
  local f="${SPINDLE_CACHE}/kafka-data/${KAFKA_VERSION:-4.3.1}-${KAFKA_PORT:-9092}/kafka.pid"
  [[ -r "$f" ]] && cat "$f"
}
kafka_log_dirs() { echo "${SPINDLE_CACHE}/kafka-data/${KAFKA_VERSION:-4.3.1}-${KAFKA_PORT:-9092}/kraft"; }

kafka_version() {
  local home jar
  home="$("$BENCH_ROOT/scripts/kafka.sh" install 2>/dev/null | tail -n 1)"
  jar="$(find "$home/libs" -maxdepth 1 -name 'kafka-clients-*.jar' 2>/dev/null | head -n 1)"
  jar="${jar##*/kafka-clients-}"
  echo "${jar%.jar}"
}

java_version() { java -version 2>&1 | head -n 1; }

# Sum of the sizes of the .log segment files of TOPIC (bytes stored on the broker).
topic_log_bytes() {
  local dir
  dir="$(kafka_log_dirs)"
  find "$dir" -maxdepth 2 -path "$dir/$1-*" -name '*.log' -printf '%s\n' 2>/dev/null |
    awk '{ s += $1 } END { printf "%d\n", s }'
}

# Number of records in TOPIC (sum of the partitions' end offsets).
topic_record_count() {
  kafka_tool get-offsets --bootstrap-server "$KAFKA_ADDR" --topic "$1" 2>/dev/null |
    awk -F: '{ s += $NF } END { printf "%d\n", s }'
}

topic_create() {
  kafka_tool topics --bootstrap-server "$KAFKA_ADDR" --create --topic "$1" \
    --partitions "$2" --replication-factor 1 >/dev/null
}
topic_delete() {
  kafka_tool topics --bootstrap-server "$KAFKA_ADDR" --delete --topic "$1" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------- sections

# section_data NAME: sets SECTION_DATA to the folder of section NAME's figures: this run's, or
# with BENCH_FROM_RUN an earlier run's, whose saved settings (NAME/meta.env, `declare -p`
# output) are then loaded as globals.
section_data() {
  if [[ -n "${BENCH_FROM_RUN:-}" ]]; then
    SECTION_DATA="$BENCH_FROM_RUN/$1"
    [[ -f "$SECTION_DATA/meta.env" ]] || die "no $SECTION_DATA/meta.env"
    # shellcheck source=/dev/null
    source <(sed 's/^declare -/declare -g -/' "$SECTION_DATA/meta.env")
  else
    SECTION_DATA="$BENCH_RUN_DIR/$1"
  fi
}

# section_notes NAME: prints the hand-written notes of section NAME (scripts/bench/NAME-notes.md), if any.
section_notes() {
  local f="$BENCH_ROOT/scripts/bench/$1-notes.md"
  if [[ -f "$f" ]]; then cat "$f"; echo; fi
}

# ---------------------------------------------------------------------------- docs

# Writes the header of docs/BENCHMARKS.md if the file does not exist yet.
docs_init() {
  local f="$1"
  [[ -f "$f" ]] && return 0
  mkdir -p "$(dirname "$f")"
  cat >"$f" <<'EOF'
# Benchmarks

Measured numbers for Spindle, each next to a reference tool run on the same machine, with
the same settings and data, in alternating rounds. Every section below is written by
`scripts/bench.sh` (between its `<!-- bench:NAME:start/end -->` markers), with the machine,
the versions, the exact commands, every round's raw figures, medians and spreads.

Rerun everything with

```sh
scripts/bench.sh all                 # every section, 5 rounds each
scripts/bench.sh simulator --rounds 5
```

`scripts/bench.sh --help` lists the sections and options. A section is regenerated on its
own: the others are left as they are (and keep their own date, machine and commit). Raw logs
of every run are kept in `~/.cache/spindle/bench/<run>/`.

The machine is a small shared VM (2 cores) and noisy: read the spreads, not just the
medians, and compare figures only within one section's run.

EOF
}

# docs_replace FILE NAME CONTENT_FILE: puts CONTENT_FILE between NAME's markers in FILE,
# appending the marked section at the end if it is not there yet.
docs_replace() {
  local f="$1" name="$2" content="$3" start end tmp
  start="<!-- bench:$name:start -->"
  end="<!-- bench:$name:end -->"
  tmp="$f.tmp.$$"
  if grep -qxF "$start" "$f" && grep -qxF "$end" "$f"; then
    awk -v start="$start" -v end="$end" -v file="$content" '
      $0 == start { print; while ((getline line < file) > 0) print line; skip = 1; next }
      $0 == end { skip = 0; print; next }
      !skip { print }' "$f" >"$tmp"
  else
    { cat "$f"; echo "$start"; cat "$content"; echo "$end"; } >"$tmp"
  fi
  mv -f "$tmp" "$f"
}
