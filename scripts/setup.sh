#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, only those missing.
# Idempotent and quiet when everything is there. Needs root (or sudo).
set -euo pipefail

# C toolchain and zlib for librdkafka's bundled build; Java and Maven for
# Apache Kafka (scripts/kafka.sh); InfluxDB 1.x for the InfluxDB sink's tests
# (scripts/influxdb.sh runs it with its own config; the package's service is unused);
# Prometheus for the metrics test (scripts/prometheus.sh, likewise);
# Chromium and its WebDriver for the dashboard's browser test
# (tests/e2e/dashboard.rs); docker-compose to check docker/compose.yml without
# a Docker engine (scripts/check-deploy.sh; promtool comes with prometheus).
packages=(build-essential pkg-config zlib1g-dev openjdk-17-jre-headless maven influxdb prometheus
  chromium chromium-driver docker-compose)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A JDK/Maven installed outside Debian (e.g. Temurin, a tarball) is fine too.
if command -v java >/dev/null; then missing=("${missing[@]/openjdk-17-jre-headless}"); fi
if command -v mvn >/dev/null; then missing=("${missing[@]/maven}"); fi
read -r -a missing <<<"${missing[*]}"

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all system packages present" >&2
else
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python packages the interop tests use (DuckDB reads our Parquet history).
if ! python3 -c "import duckdb" 2>/dev/null; then
  echo "setup: pip install duckdb" >&2
  python3 -m pip install --quiet --disable-pip-version-check "duckdb==2.0.0"
fi
# moto's S3 server for the S3 tests (scripts/s3.sh pins its version and installs it only
# if `import moto.server` fails).
"$(dirname "$0")/s3.sh" install
