"""`perf stat` as a profiling source: which events this machine supports, a runner that never
outlives its owner, and a pure parser for perf's interval CSV.

The original PipeTune ran `perf stat -a -I 1000` without `-x` and then split lines on `;`; here
the separator is always given (`-x ,`), and parsing is one pure function.

CSV layout written by `perf stat -x , -I <ms>` (perf 6.1, observed on the dev VM)::

    # started on Thu Nov 26 00:37:20 2026
    <blank>
         0.205098357,162.75,msec,task-clock,162752734,100.00,0.814,CPUs utilized
         0.205098357,134,,context-switches,162767130,100.00,823.334,/sec
         0.601081097,<not counted>,msec,task-clock,0,100.00,,
         0.200312345,<not supported>,,instructions,0,100.00,,

i.e. ``time, value, unit, event, run time (ns), measured %, metric value, metric unit``.
`time` is seconds since perf started counting, printed at the *end* of each interval; the last
interval (flushed on SIGINT or when the workload exits) is usually shorter. Without `-I` the
first field is missing. Values are scaled by perf when counters are multiplexed; `measured %` is
100 × run time / enabled time (100.00 when both are zero). Lines whose value and event are both
empty carry only an extra metric of the previous event and are skipped.
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pipetune.errors import PipeTuneError

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


class PerfError(PipeTuneError):
    """perf is missing, refused to start, or failed while counting."""


class PerfParseError(PerfError):
    """A line of perf's CSV output is not in the expected layout."""


class SampleStatus(enum.StrEnum):
    """What perf said about a counter in one interval."""

    OK = "ok"
    NOT_SUPPORTED = "not supported"  # the event does not exist on this machine (value is None)
    NOT_COUNTED = "not counted"  # the counter never ran in the interval (value is None)


@dataclass(frozen=True)
class PerfSample:
    """One counter in one interval, reported at the interval's end time.

    `measured_pct` is perf's "percentage of the enabled time the counter ran": below 100 the
    value was scaled up from multiplexed counting; on a `not counted` sample, 100 means the
    counter was not even enabled (a `-p` task that never ran: a true zero), 0 means it was
    enabled but never got a hardware counter (unknown).
    """

    time_s: float
    event: str
    value: float | None
    unit: str
    status: str
    measured_pct: float | None = None


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _parse_row(fields: list[str], time_s: float, lineno: int, line: str) -> PerfSample | None:
    """`fields` starts at the counter value. None for a metric-only continuation line."""
    if len(fields) < 3:
        raise PerfParseError(f"line {lineno}: expected at least 3 counter fields: {line!r}")
    raw, unit, event = fields[0], fields[1], fields[2]
    if not raw and not event:
        return None
    if not event:
        raise PerfParseError(f"line {lineno}: empty event name: {line!r}")
    pct = _float_or_none(fields[4]) if len(fields) > 4 else None
    if raw == "<not supported>":
        return PerfSample(time_s, event, None, unit, SampleStatus.NOT_SUPPORTED, pct)
    if raw == "<not counted>":
        return PerfSample(time_s, event, None, unit, SampleStatus.NOT_COUNTED, pct)
    value = _float_or_none(raw)
    if value is None:
        raise PerfParseError(f"line {lineno}: counter value {raw!r} is not a number: {line!r}")
    return PerfSample(time_s, event, value, unit, SampleStatus.OK, pct)


def _rows(text: str) -> list[tuple[int, str, list[str]]]:
    """Data lines as (line number, line, fields). A final line without its newline is a write
    cut short (perf killed mid-line) and is dropped."""
    lines = text.split("\n")
    if lines and lines[-1].strip() and not text.endswith("\n"):
        lines = lines[:-1]
    out = []
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        out.append((lineno, line, [f.strip() for f in stripped.split(",")]))
    return out


def parse_interval_csv(text: str) -> list[PerfSample]:
    """Parse the output of `perf stat -x , -I <ms>` (default aggregation, no `-A`/`--per-*`).

    Raises:
        PerfParseError: naming the first line that is not in perf's interval CSV layout.
    """
    samples: list[PerfSample] = []
    for lineno, line, fields in _rows(text):
        time_s = _float_or_none(fields[0])
        if time_s is None:
            raise PerfParseError(f"line {lineno}: interval time {fields[0]!r} is not a number")
        sample = _parse_row(fields[1:], time_s, lineno, line)
        if sample is not None:
            samples.append(sample)
    return samples


def parse_counts_csv(text: str) -> list[PerfSample]:
    """Parse the output of `perf stat -x ,` without `-I` (one total per event; `time_s` is 0)."""
    samples: list[PerfSample] = []
    for lineno, line, fields in _rows(text):
        sample = _parse_row(fields, 0.0, lineno, line)
        if sample is not None:
            samples.append(sample)
    return samples


# --- event support --------------------------------------------------------------------------


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


def _error_reason(stderr: str) -> str:
    """perf's own words for why an event list was refused, in one line."""
    for line in stderr.splitlines():
        if "\\___" in line:
            detail = line.split("\\___", 1)[1].strip()
            return "unknown event (perf: parser error)" if detail == "parser error" else detail
    useful = [
        ln.strip()
        for ln in stderr.splitlines()
        if ln.strip() and not ln.strip().startswith(("Run 'perf list'", "Usage:", "-"))
    ]
    return " ".join(useful[:2]) or "perf stat failed with no message"


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
            return None, _error_reason(done.stderr)
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


# --- the runner -----------------------------------------------------------------------------


def _has_interval(out: Path) -> bool:
    """Whether perf's -o file holds a counted line yet (its header lines start with '#')."""
    try:
        with out.open(errors="replace") as f:
            return any(line.strip() and not line.startswith("#") for line in f)
    except FileNotFoundError:
        return False


def _halt(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Stop perf: SIGINT (perf prints the interval cut short, then exits) and EOF to the
    watchdog; SIGKILL if it is still there after `timeout_s`."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def _reap(proc: subprocess.Popen[bytes], workdir: str, timeout_s: float) -> None:
    """`_halt` and delete perf's scratch directory; the object's finalizer (also at exit)."""
    _halt(proc, timeout_s)
    shutil.rmtree(workdir, ignore_errors=True)


class PerfStat:
    """`perf stat -x , -I <interval_ms> -e <events> (-a | -p <pids>) -o <tmpfile>`, start to stop.

    Scope:
        `pids=None` counts system-wide (`-a`), as the original did. Everything on the node is
        included (other jobs, the tuner, perf itself), and `task-clock`/`cpu-clock` become
        "number of CPUs × wall time", so they say nothing; use `proc_counters` for CPU use.

        `pids=[...]` counts those processes (`-p`). perf opens counters on the threads that
        exist when it starts, with inheritance on, so threads and children those threads
        create *later* are counted too (checked on this VM: a thread started 0.6 s after attach
        was counted in full). Processes outside that tree are not: in Spark standalone mode the
        executor JVMs are forked by the Worker daemon, not by `spark-submit`, so attach to the
        driver and executor JVMs themselves. Attaching when the first epoch starts (JVMs and
        their thread pools already up) is the intended use; it also keeps JVM start-up and
        data loading out of the counts.

    Lifetime: perf runs `-- cat` as its workload, with `cat` reading a pipe only this object
    writes to. perf counts until the workload exits, so if this process dies in any way
    (SIGKILL included) the pipe closes, `cat` exits and perf flushes and exits too. With `-p`
    the workload is not counted. `stop()`, the context manager, garbage collection and
    interpreter exit all send SIGINT and close the pipe, then SIGKILL after
    `stop_timeout_s`.

    Times in the output are seconds since perf started counting. `started_at` places
    `time.time()` timestamps on that axis: after `start()` it is the spawn time (perf starts
    counting a few tens of ms later); `stop()` refines it from the final interval, which perf
    prints the moment it gets SIGINT (error: signal delivery, about a millisecond). Convert
    log timestamps after `stop()`.
    """

    def __init__(
        self,
        events: Sequence[str],
        pids: Sequence[int] | None = None,
        interval_ms: int = 200,
        perf: str = "perf",
        stop_timeout_s: float = 5.0,
    ) -> None:
        problems = []
        events = list(dict.fromkeys(events))
        if not events:
            problems.append("events: expected at least one event, found none")
        if bad := [e for e in events if "," in e or not e.strip()]:
            problems.append(f"events: names with ',' or empty cannot be read back from CSV: {bad}")
        if pids is not None and (not pids or any(p <= 0 for p in pids)):
            problems.append(f"pids: expected positive process ids, found {list(pids)}")
        if interval_ms < 10:
            problems.append(f"interval_ms: perf's minimum is 10, found {interval_ms}")
        if problems:
            raise ValueError("; ".join(problems))
        self.events: tuple[str, ...] = tuple(events)
        self.pids: tuple[int, ...] | None = None if pids is None else tuple(pids)
        self.interval_ms = interval_ms
        self.perf = perf
        self.stop_timeout_s = stop_timeout_s
        self.started_at: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir = ""
        self._finalizer: weakref.finalize | None = None
        self._output: str | None = None

    def argv(self, output: str) -> list[str]:
        scope = ["-a"] if self.pids is None else ["-p", ",".join(map(str, self.pids))]
        return [
            self.perf, "stat", "-x", ",", "-I", str(self.interval_ms),
            "-e", ",".join(self.events), *scope, "-o", output, "--", "cat",
        ]  # fmt: skip

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> PerfStat:
        """Spawn perf in its own session (a terminal's Ctrl-C is ours to forward, not perf's)."""
        if self._proc is not None:
            raise PerfError("this PerfStat was already started; create a new one")
        exe = shutil.which(self.perf)
        if exe is None:
            raise PerfError(f"{self.perf!r} not found on PATH; install linux-tools / perf")
        self._workdir = tempfile.mkdtemp(prefix="pipetune-perf-")
        out = os.path.join(self._workdir, "stat.csv")
        with open(os.path.join(self._workdir, "stderr.txt"), "wb") as err:
            self._proc = subprocess.Popen(
                [exe, *self.argv(out)[1:]],
                stdin=subprocess.PIPE,  # the watchdog's lifeline; see the class docstring
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        self.started_at = time.time()
        self._finalizer = weakref.finalize(
            self, _reap, self._proc, self._workdir, self.stop_timeout_s
        )
        return self

    def attached(self, timeout_s: float = 1.0) -> bool:
        """Wait until perf counts (its first interval is written) or exits; False if it exited.

        perf exits at once when a process it was given is already gone ("No such process"), so
        a caller attaching to a changing process tree can retry with the processes alive now.
        Still running with nothing written after `timeout_s` (a loaded machine) counts as
        attached: a later failure is still reported by `stop()`.
        """
        if self._proc is None:
            raise PerfError("PerfStat.attached() before start()")
        out = Path(self._workdir, "stat.csv")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if _has_interval(out):
                return True
            time.sleep(0.02)
        return self._proc.poll() is None

    def stop(self) -> str:
        """Stop perf and return its raw CSV output. Calling it again returns the same text.

        Raises:
            PerfError: perf was never started, or it failed (e.g. an unknown event or pid).
        """
        if self._output is not None:
            return self._output
        if self._proc is None or self._finalizer is None:
            raise PerfError("PerfStat.stop() before start()")
        exited_before = self._proc.poll()
        out = Path(self._workdir, "stat.csv")
        err = Path(self._workdir, "stderr.txt")
        signalled_at = time.time()
        _halt(self._proc, self.stop_timeout_s)
        text = out.read_text(errors="replace") if out.exists() else ""
        message = err.read_text(errors="replace").strip() if err.exists() else ""
        self._finalizer()  # reaps perf if still needed and deletes the scratch directory
        if exited_before not in (None, 0):
            raise PerfError(f"perf exited {exited_before} before stop: {_error_reason(message)}")
        try:
            samples = parse_interval_csv(text)
        except PerfParseError:
            samples = []
        if not samples and message:
            raise PerfError(f"perf produced no counts: {_error_reason(message)}")
        if exited_before is None and samples:
            # perf prints the interval cut short by SIGINT at once, so its time is "signal
            # sent" on perf's axis: a better anchor than the spawn time.
            self.started_at = signalled_at - samples[-1].time_s
        self._output = text
        return text

    def close(self) -> None:
        """Make sure perf is gone, without reading or raising (for error paths)."""
        if self._finalizer is not None:
            self._finalizer()

    @property
    def output(self) -> str:
        if self._output is None:
            raise PerfError("no output yet: stop() the PerfStat first")
        return self._output

    def relative(self, wall_time: float) -> float:
        """A `time.time()` timestamp as seconds on perf's interval axis."""
        if self.started_at is None:
            raise PerfError("PerfStat.relative() before start()")
        return wall_time - self.started_at

    def __enter__(self) -> PerfStat:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.stop()
        else:
            self.close()
