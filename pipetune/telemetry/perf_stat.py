"""`PerfStat`: one `perf stat -x , -I` run over chosen events, that never outlives its owner."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from pipetune.telemetry.perf_parse import (
    PerfError,
    PerfParseError,
    error_reason,
    parse_interval_csv,
)


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
            raise PerfError(f"perf exited {exited_before} before stop: {error_reason(message)}")
        try:
            samples = parse_interval_csv(text)
        except PerfParseError:
            samples = []
        if not samples and message:
            raise PerfError(f"perf produced no counts: {error_reason(message)}")
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
