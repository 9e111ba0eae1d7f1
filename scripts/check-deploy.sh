#!/usr/bin/env bash
# Checks the container deployment in docker/ without a Docker engine:
#   - docker/compose.yml is a valid compose file (Debian's docker-compose
#     renders it with `config`) and has every service docs/deploy.md names;
#   - Prometheus accepts docker/prometheus/prometheus.yml (promtool);
#   - every Grafana dashboard JSON parses, and every data source it names is
#     provisioned in docker/grafana/provisioning/datasources.
# Prints one line per check and a closing "N passed, N failed" line (counted
# by scripts/test.sh); exits 1 when a check failed. Needs docker-compose,
# promtool and python3 (scripts/setup.sh installs them).
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
check() {
  local name="$1"
  shift
  local output
  if output="$("$@" 2>&1)"; then
    echo "ok - $name"
    passed=$((passed + 1))
  else
    echo "FAIL - $name"
    printf '%s\n' "$output" | sed 's/^/    /'
    failed=$((failed + 1))
  fi
}

compose_valid() {
  # The token is required at run time; any value renders the file.
  SPINDLE_TOKEN="${SPINDLE_TOKEN:-check}" docker-compose -f docker/compose.yml config -q
}

compose_services() {
  local services missing=()
  services="$(SPINDLE_TOKEN="${SPINDLE_TOKEN:-check}" docker-compose -f docker/compose.yml config --services)" || return 1
  for s in kafka influxdb prometheus grafana spindle worker simulator; do
    grep -qx "$s" <<<"$services" || missing+=("$s")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "services missing from docker/compose.yml: ${missing[*]}"
    return 1
  fi
}

dashboards_valid() {
  python3 - <<'PY'
import json, pathlib, re, sys
provisioned = set()
for f in pathlib.Path("docker/grafana/provisioning/datasources").glob("*.yml"):
    provisioned |= set(re.findall(r"^\s*uid:\s*(\S+)", f.read_text(), re.M))
bad = []
dashboards = sorted(pathlib.Path("docker/grafana/dashboards").glob("*.json"))
if not dashboards:
    bad.append("no dashboards in docker/grafana/dashboards")
for f in dashboards:
    try:
        d = json.loads(f.read_text())
    except ValueError as e:
        bad.append(f"{f}: {e}")
        continue
    if not d.get("uid") or not d.get("panels"):
        bad.append(f"{f}: no uid or no panels")
    def walk(o):
        if isinstance(o, dict):
            ds = o.get("datasource")
            if isinstance(ds, dict) and ds.get("uid") and not ds["uid"].startswith("--") and ds["uid"] not in provisioned:
                bad.append(f"{f}: data source {ds['uid']} is not provisioned")
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(d)
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
}

check "docker/compose.yml is a valid compose file" compose_valid
check "docker/compose.yml has every service" compose_services
check "promtool accepts docker/prometheus/prometheus.yml" promtool check config docker/prometheus/prometheus.yml
check "Grafana dashboards parse and use provisioned data sources" dashboards_valid

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
