"""perf_events: event detection with a fake perf (the bisection) and the real perf here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipetune.telemetry.perf_events import DEFAULT_EVENTS, detect_events

needs_perf = pytest.mark.usefixtures("perf_installed")


def test_default_candidates_cover_hardware_and_software():
    for event in ("instructions", "cycles", "cache-misses", "LLC-loads", "task-clock"):
        assert event in DEFAULT_EVENTS


FAKE_PERF = r"""#!/bin/bash
echo "$*" >> "$FAKE_PERF_LOG"
if [ "$1" = "--version" ]; then echo "perf version fake"; exit 0; fi
while [ $# -gt 0 ]; do
  case "$1" in -o) out=$2; shift;; -e) list=$2; shift;; esac; shift
done
case ",$list" in *,bad*)
  echo "event syntax error: '$list'" >&2
  echo "          \___ Cannot find PMU \`bad'. Missing kernel support?" >&2
  exit 129;;
esac
: > "$out"
IFS=, read -ra evs <<< "$list"
for e in "${evs[@]}"; do
  case "$e" in
    hw*) echo "<not supported>,,$e,0,100.00,," >> "$out";;
    cycles) echo "5,,cycles:u,1,100.00,," >> "$out";;
    *) echo "1,,$e,1,100.00,," >> "$out";;
  esac
done
"""


def test_detect_events_logic_with_a_fake_perf(tmp_path: Path, monkeypatch):
    fake = tmp_path / "perf"
    fake.write_text(FAKE_PERF)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_PERF_LOG", str(log))
    support = detect_events(["sw1", "hw1", "cycles", "sw1"], perf=str(fake))
    assert support.supported == ("sw1", "cycles")  # `cycles:u` printed for `cycles`
    assert support.unsupported == {"hw1": "<not supported>"}
    assert len(log.read_text().splitlines()) == 2  # --version + one combined run
    log.unlink()
    support = detect_events(["sw1", "hw1", "bad/x/", "sw2", "sw3", "sw4"], perf=str(fake))
    assert support.supported == ("sw1", "sw2", "sw3", "sw4")
    assert support.unsupported == {
        "hw1": "<not supported>",
        "bad/x/": "Cannot find PMU `bad'. Missing kernel support?",
    }
    runs = [line for line in log.read_text().splitlines() if line.startswith("stat")]
    assert runs[0].endswith("-e sw1,hw1,bad/x/,sw2,sw3,sw4 -- true")
    assert not any(r.endswith("-e sw3 -- true") for r in runs)  # its half ran as a whole


def test_detect_events_without_perf():
    support = detect_events(["task-clock"], perf="/nonexistent/perf")
    assert not support.perf_available and support.reason
    assert support.supported == () and "task-clock" in support.unsupported


def _counts_here(event: str) -> bool:
    done = subprocess.run(
        ["perf", "stat", "-x", ",", "-e", event, "--", "true"], capture_output=True, text=True
    )
    return done.returncode == 0 and "<not supported>" not in done.stderr


@needs_perf
def test_detect_events_on_this_machine():
    support = detect_events(DEFAULT_EVENTS)
    assert support.perf_available
    assert "task-clock" in support.supported
    assert set(support.supported) | set(support.unsupported) == set(DEFAULT_EVENTS)
    if _counts_here("instructions"):
        assert "instructions" in support.supported
    else:
        assert support.unsupported["instructions"] == "<not supported>"


@needs_perf
def test_detect_events_falls_back_per_event_when_perf_refuses_the_list():
    support = detect_events(["task-clock", "nosuchpmu/xyz/", "context-switches"])
    assert support.supported == ("task-clock", "context-switches")
    assert "nosuchpmu" in support.unsupported["nosuchpmu/xyz/"]
