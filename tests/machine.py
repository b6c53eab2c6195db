"""What the tests need of this machine: tools CI installs (missing → fail under CI=true, skip
elsewhere) and waiting for a process to end."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import psutil
import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_tool(name: str, install: str) -> str:
    """Path of the command `name`; without it, fail under CI=true and skip elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"`{name}` is not on PATH ({install})"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def require_cpuset() -> Path:
    """The cgroup v1 cpuset root; without a usable one, fail under CI=true (CI runs as root
    on a machine that has one) and skip elsewhere."""
    from pipetune.placement import CPUSET_ROOT, cpuset_unavailable

    reason = cpuset_unavailable()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI runs as root with a cgroup v1 cpuset, but {reason}", pytrace=False)
        pytest.skip(reason)
    return CPUSET_ROOT


def gone_within(pid: int, seconds: float) -> bool:
    """The process has exited (a zombie waiting for init to reap it counts as exited)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.01)
    return False
