#!/usr/bin/env bash
# Debian packages the test suite uses for real: influxd and the influx CLI, perf, taskset, and
# chromium (a headless browser opens `pipetune report`'s page and takes a screenshot).
# Installs what is missing when run as root with apt-get; otherwise says what to install.
set -euo pipefail
need=()
command -v influxd >/dev/null || need+=(influxdb)
command -v influx >/dev/null || need+=(influxdb-client)
command -v perf >/dev/null || need+=(linux-perf)
command -v taskset >/dev/null || need+=(util-linux)
command -v chromium >/dev/null || need+=(chromium)
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
    echo "missing system packages: ${need[*]} (sudo apt-get install ${need[*]})" >&2
    exit 1
fi
