#!/usr/bin/env bash
# Set up the environment (venv with the locked stack, Java, Spark, BigDL jars) and run
# `pipetune --config pipetune.conf` with any extra arguments, e.g. --mode v1 or --resume runs/ID.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup-env.sh
if [[ " $* " == *" --setup-only "* ]]; then exit 0; fi
args=("$@")
if [[ " $* " != *" --config "* && " $* " != *" --resume "* ]]; then
    args=(--config pipetune.conf "${args[@]}")
fi
exec .venv/bin/pipetune "${args[@]}"
