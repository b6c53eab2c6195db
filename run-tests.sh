#!/usr/bin/env bash
# Set up the environment with the development tools and the services the tests use
# (influxd, perf), then run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-system-deps.sh
scripts/setup-env.sh --dev
exec .venv/bin/python -m pytest "$@"
