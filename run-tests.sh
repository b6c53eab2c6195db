#!/usr/bin/env bash
# Set up the environment with the development tools and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup-env.sh --dev
exec .venv/bin/python -m pytest "$@"
