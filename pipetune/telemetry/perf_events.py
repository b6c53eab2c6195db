"""Which perf events this machine can count: the candidate lists and their detection."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipetune.telemetry.perf_parse import PerfSample, SampleStatus, error_reason, parse_counts_csv

HARDWARE_EVENTS: tuple[str, ...] = (
    "instructions",
    "cycles",
    "cache-references",
    "cache-misses",
    "branches",
    "branch-misses",
    "bus-cycles",
    "LLC-loads",
    "LLC-load-misses",
    "L1-dcache-loads",
    "L1-dcache-load-misses",
    "dTLB-load-misses",
    "iTLB-load-misses",
)
"""A subset of the original's 58 events that generic (non-model-specific) perf aliases cover."""

SOFTWARE_EVENTS: tuple[str, ...] = (
    "task-clock",
    "context-switches",
    "cpu-migrations",
    "page-faults",
    "major-faults",
    "minor-faults",
)
"""Kernel software events: available wherever perf runs, VMs included."""

DEFAULT_EVENTS: tuple[str, ...] = HARDWARE_EVENTS + SOFTWARE_EVENTS

_PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class EventSupport:
    """Which candidate events `perf stat` can count here. `unsupported` maps event → reason."""

    supported: tuple[str, ...]
    unsupported: dict[str, str] = field(default_factory=dict)
    perf_available: bool = True
    reason: str = ""  # why perf itself is unusable, when perf_available is False


def perf_is_available(perf: str = "perf") -> tuple[bool, str]:
    """(True, version) if `perf --version` runs, else (False, what is missing)."""
    exe = shutil.which(perf)
    if exe is None:
        return False, f"{perf!r} not found on PATH; install linux-tools / perf"
    try:
        done = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{exe} --version failed: {exc}"
    text = (done.stdout + done.stderr).strip()
    if done.returncode != 0:  # e.g. Debian's wrapper: "perf not found for kernel …"
        return False, f"{exe} --version exited {done.returncode}: {text.splitlines()[:1]}"
    return True, text


def _probe(perf: str, events: Sequence[str]) -> tuple[list[PerfSample] | None, str]:
    """One `perf stat -x , -e <events> -- true`: (samples, "") or (None, perf's error)."""
    with tempfile.TemporaryDirectory(prefix="pipetune-perf-") as tmp:
        out = Path(tmp) / "probe.csv"
        argv = [perf, "stat", "-x", ",", "-o", str(out), "-e", ",".join(events), "--", "true"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None, f"perf stat did not finish within {_PROBE_TIMEOUT_S:g} s"
        if done.returncode != 0:
            return None, error_reason(done.stderr)
        return parse_counts_csv(out.read_text() if out.exists() else ""), ""


def _classify(requested: str, samples: list[PerfSample]) -> str | None:
    """None if `requested` counted; otherwise the reason. perf may print a modifier perf added
    itself (`cycles:u` when not allowed kernel counting), so `name:…` matches `name`."""
    for s in samples:
        if s.event == requested or s.event.startswith(requested + ":"):
            return "<not supported>" if s.status == SampleStatus.NOT_SUPPORTED else None
    return "not in perf's output"


def _probe_all(perf: str, events: list[str]) -> dict[str, str | None]:
    """event → None (counts) or reason. A list perf refuses is halved until the refused
    events stand alone, so only they (and the halves leading to them) cost extra runs."""
    samples, err = _probe(perf, events)
    if samples is not None:
        return {e: _classify(e, samples) for e in events}
    if len(events) == 1:
        return {events[0]: err}
    mid = len(events) // 2
    return _probe_all(perf, events[:mid]) | _probe_all(perf, events[mid:])


def detect_events(candidates: Sequence[str] = DEFAULT_EVENTS, perf: str = "perf") -> EventSupport:
    """Find which of `candidates` perf can count on this machine.

    One combined `perf stat -x , -e <all> -- true` run answers for every event when perf
    accepts the list (unsupported ones come back `<not supported>`). perf refuses the whole
    list if one event is unknown (a missing PMU, a typo); then the list is bisected so that
    the offending events are probed on their own and each gets perf's own reason.
    """
    wanted = list(dict.fromkeys(candidates))
    ok, why = perf_is_available(perf)
    if not ok:
        return EventSupport((), {e: why for e in wanted}, perf_available=False, reason=why)
    if not wanted:
        return EventSupport(())
    reasons = _probe_all(perf, wanted)
    supported = tuple(e for e in wanted if reasons[e] is None)
    unsupported = {e: r for e in wanted if (r := reasons[e]) is not None}
    return EventSupport(supported, unsupported)
