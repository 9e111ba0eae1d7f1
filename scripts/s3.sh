#!/usr/bin/env bash
# scripts/s3.sh — an S3-compatible server (moto, from PyPI) for Spindle's tests.
#
#   scripts/s3.sh start     install moto on first use, start, wait until it answers S3
#                           requests; prints the endpoint URL (last stdout line)
#   scripts/s3.sh stop      stop our server (buckets and objects live in its memory: gone)
#   scripts/s3.sh status    "running http://127.0.0.1:9000" (exit 0) / "stopped" (exit 3)
#   scripts/s3.sh install   only install moto (start does it on demand; setup.sh calls it)
#
# Any S3 client works against the endpoint with any access key and secret (moto does not
# check signatures); buckets must be created first (PUT /BUCKET). See scripts/README.md.
set -euo pipefail

MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
PYTHON="${PYTHON:-python3}"

S3_HOST=127.0.0.1
S3_PORT="${S3_PORT:-9000}"
S3_START_TIMEOUT="${S3_START_TIMEOUT:-30}"
S3_STOP_TIMEOUT="${S3_STOP_TIMEOUT:-10}"

SPINDLE_CACHE="${SPINDLE_CACHE:-$HOME/.cache/spindle}"
S3_DIR="$SPINDLE_CACHE/s3"
S3_PID_FILE="$S3_DIR/moto-$S3_PORT.pid"
S3_LOG="$S3_DIR/moto-$S3_PORT.log"
S3_ENDPOINT="http://$S3_HOST:$S3_PORT"

SERVICE_SCRIPT=s3.sh
# shellcheck source-path=SCRIPTDIR source=lib/service.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/service.sh"

# ---------------------------------------------------------------------------- install

moto_installed() { "$PYTHON" -c "import moto.server" 2>/dev/null; }

install_moto() {
  moto_installed && return 0
  need "$PYTHON"
  log "pip install moto[server]==$MOTO_VERSION"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  moto_installed || die "moto installed but 'import moto.server' still fails"
}

# ---------------------------------------------------------------------------- process helpers

# Print the pid from our pid file if it is a live moto server of ours on our port.
server_pid() { pid_from_file "$S3_PID_FILE" moto.server " -p $S3_PORT "; }

# Does the server answer S3? A real ListBuckets request (GET /), not a port probe.
server_answers() {
  local body
  if command -v curl >/dev/null 2>&1; then
    body="$(curl -sf --max-time 5 "$S3_ENDPOINT/" 2>/dev/null)" || return 1
  else
    body="$("$PYTHON" -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$S3_ENDPOINT/" 2>/dev/null)" ||
      return 1
  fi
  [[ "$body" == *ListAllMyBucketsResult* ]]
}

show_log() {
  log "---- last lines of $S3_LOG ----"
  tail -n 30 "$S3_LOG" >&2 2>/dev/null || true
}

# SIGTERM, wait up to $2 s, then SIGKILL. Our server only.
terminate_server() { terminate "$1" "$2" server_pid; }

# Wait until the server with pid $1 answers; on failure show its log and stop it.
wait_ready() {
  local pid="$1" deadline=$((SECONDS + S3_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! server_pid >/dev/null; then
      show_log
      rm -f "$S3_PID_FILE"
      die "moto server (pid $pid) exited during startup"
    fi
    if port_open "$S3_HOST" "$S3_PORT" && server_answers; then
      return 0
    fi
    sleep 0.1
  done
  show_log
  log "moto server did not answer within ${S3_START_TIMEOUT}s; stopping pid $pid"
  terminate_server "$pid" 5
  rm -f "$S3_PID_FILE"
  die "start timed out"
}

# ---------------------------------------------------------------------------- commands

cmd_start() {
  mkdir -p "$S3_DIR"
  lock "$S3_DIR/moto-$S3_PORT.lock" $((S3_START_TIMEOUT + S3_STOP_TIMEOUT + 30))

  local pid
  if pid="$(server_pid)"; then
    if server_answers; then
      log "already running (pid $pid)"
    else
      log "moto server (pid $pid) is starting; waiting for it"
      wait_ready "$pid"
    fi
    echo "$S3_ENDPOINT"
    return 0
  fi
  rm -f "$S3_PID_FILE"
  install_moto
  if port_open "$S3_HOST" "$S3_PORT"; then
    if command -v ss >/dev/null 2>&1; then ss -ltnp "sport = :$S3_PORT" >&2 2>/dev/null || true; fi
    die "port $S3_PORT is already in use by a process that is not our server (S3_PORT picks another port)"
  fi

  log "starting moto $(moto_version) on $S3_ENDPOINT, log in $S3_LOG"
  local t0
  t0=$(now_ms)
  spawn_detached "$S3_DIR" "$S3_PID_FILE" "$S3_LOG" \
    "$PYTHON" -m moto.server -H "$S3_HOST" -p "$S3_PORT"
  pid="$(await_pid server_pid)" || { show_log; die "moto server did not start"; }
  wait_ready "$pid"
  log "ready in $(secs_since "$t0") (pid $pid)"
  echo "$S3_ENDPOINT"
}

moto_version() { "$PYTHON" -c "import moto; print(moto.__version__)" 2>/dev/null || echo "?"; }

cmd_stop() {
  if [[ ! -d "$S3_DIR" ]]; then
    log "not running"
    return 0
  fi
  lock "$S3_DIR/moto-$S3_PORT.lock" $((S3_START_TIMEOUT + S3_STOP_TIMEOUT + 30))
  stop_server "moto server" "$S3_PID_FILE" server_pid "$S3_STOP_TIMEOUT"
}

cmd_status() {
  local pid
  if pid="$(server_pid)"; then
    if server_answers; then
      echo "running $S3_ENDPOINT (pid $pid, moto $(moto_version))"
      return 0
    fi
    echo "starting $S3_ENDPOINT (pid $pid, not answering yet)"
    return 3
  fi
  echo "stopped $S3_ENDPOINT"
  return 3
}

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    install) install_moto ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
