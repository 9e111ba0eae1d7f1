# scripts/lib/service.sh — what the service scripts (kafka.sh, s3.sh, influxdb.sh) share: messages,
# locks, recognising our own server process, starting it detached and stopping it.
# Sourced, not run. The caller sets SERVICE_SCRIPT (the name its messages start with).
# shellcheck shell=bash

now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs_since() { local d=$(($(now_ms) - $1)); printf '%d.%03ds' $((d / 1000)) $((d % 1000)); }

log() { printf '%s: %s\n' "$SERVICE_SCRIPT" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || die "'$c' is not installed"; done
}

# Take an exclusive lock on $1 (fd 9) for the rest of the process, if flock exists,
# waiting at most $2 seconds (default 300). Servers are started with fd 9 closed.
lock() {
  command -v flock >/dev/null 2>&1 || return 0
  mkdir -p "$(dirname "$1")"
  exec 9>"$1"
  flock -w "${2:-300}" 9 || die "timed out waiting for lock $1"
}
unlock() {
  command -v flock >/dev/null 2>&1 || return 0
  flock -u 9 2>/dev/null || true
  exec 9>&-
}

# Does something accept TCP connections on HOST PORT?
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# The command line of process $1, arguments separated by spaces.
cmdline_of() {
  if [[ -r "/proc/$1/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null
  else
    ps -o args= -p "$1" 2>/dev/null
  fi
}

# pid_from_file PID_FILE TEXT...: prints the pid in PID_FILE if that process is alive and
# its command line contains every TEXT (so a recycled pid is never taken for our server).
pid_from_file() {
  local file="$1" pid cmd text
  shift
  [[ -f "$file" ]] || return 1
  pid="$(cat "$file" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  cmd=" $(cmdline_of "$pid") " || return 1
  for text in "$@"; do [[ "$cmd" == *"$text"* ]] || return 1; done
  echo "$pid"
}

# spawn_detached DIR PID_FILE OUT_FILE COMMAND...
# Starts COMMAND in the background in its own session (a Ctrl-C in the terminal does not
# reach it), from DIR, stdout and stderr into OUT_FILE, with every inherited fd beyond 0-2
# closed (fd 9 is our lock; a caller's pipe would keep e.g. `$(x.sh start)` waiting
# forever). It writes its own pid into PID_FILE before it becomes COMMAND (exec keeps it).
spawn_detached() {
  local dir="$1" pid_file="$2" out="$3"
  shift 3
  # shellcheck disable=SC2016 # $$ and "$@" belong to the inner shell
  (
    cd "$dir" || exit 1
    exec setsid bash -c '
      if [ -d /proc/$$/fd ]; then
        for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
      fi
      echo $$ >"$0"
      exec "$@"' "$pid_file" "$@"
  ) </dev/null >"$out" 2>&1 9>&- &
}

# await_pid PID_FN: prints the pid PID_FN prints (our live server, from its pid file) once
# the process spawned by spawn_detached has written it; fails after 5 s.
await_pid() {
  local _ pid
  for _ in $(seq 1 100); do
    pid="$("$1")" && { echo "$pid"; return 0; }
    sleep 0.05
  done
  "$1"
}

# terminate PID SECONDS PID_FN: SIGTERM, wait up to SECONDS while PID_FN still finds our
# server, then SIGKILL. Only ever signals PID, which the caller got from PID_FN.
terminate() {
  local pid="$1" secs="$2" alive="$3" deadline=$((SECONDS + $2))
  kill -TERM "$pid" 2>/dev/null || true
  while "$alive" >/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if "$alive" >/dev/null; then
    log "pid $pid did not exit within ${secs}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while "$alive" >/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    ! "$alive" >/dev/null || die "could not kill pid $pid"
  fi
}

# stop_server WHAT PID_FILE PID_FN SECONDS: stops our server (see terminate) if PID_FN finds
# it, says what it did, and removes the pid file. The caller holds the lock.
stop_server() {
  local what="$1" pid_file="$2" alive="$3" secs="$4" pid
  if pid="$("$alive")"; then
    log "stopping $what (pid $pid)"
    terminate "$pid" "$secs" "$alive"
    log "stopped"
  elif [[ -f "$pid_file" ]]; then
    log "not running (removing stale pid file)"
  else
    log "not running"
  fi
  rm -f "$pid_file"
}

# wait_ready_or_stop PID SECONDS PID_FN ANSWERS_FN SHOW_LOG_FN PID_FILE WHAT
# Waits until ANSWERS_FN succeeds. If our server (PID_FN) exits first, or does not answer
# within SECONDS, shows its log (SHOW_LOG_FN), stops it, removes PID_FILE and dies.
wait_ready_or_stop() {
  local pid="$1" secs="$2" alive="$3" answers="$4" show="$5" pid_file="$6" what="$7"
  local deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    if ! "$alive" >/dev/null; then
      "$show"
      rm -f "$pid_file"
      die "$what (pid $pid) exited during startup"
    fi
    "$answers" && return 0
    sleep 0.1
  done
  "$show"
  log "$what did not answer within ${secs}s; stopping pid $pid"
  terminate "$pid" 5 "$alive"
  rm -f "$pid_file"
  die "start timed out"
}

# stop_in_dir DIR LOCK_SECONDS WHAT PID_FILE PID_FN STOP_SECONDS [--wipe]
# The `stop [--wipe]` command of a server whose state lives in DIR (lock file DIR/.lock):
# stops it (see stop_server); --wipe then deletes DIR.
stop_in_dir() {
  local dir="$1" lock_secs="$2" what="$3" pid_file="$4" alive="$5" secs="$6" wipe=0 a
  shift 6
  for a in "$@"; do
    case "$a" in
      --wipe) wipe=1 ;;
      *) die "stop: unknown option $a" ;;
    esac
  done
  if [[ ! -d "$dir" ]]; then
    log "not running"
    return 0
  fi
  lock "$dir/.lock" "$lock_secs"
  stop_server "$what" "$pid_file" "$alive" "$secs"
  if ((wipe)); then
    log "wiping $dir"
    unlock
    rm -rf "$dir"
  fi
}
