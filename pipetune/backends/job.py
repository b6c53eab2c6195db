"""A launched process of the app (spark-submit, or a Python process): run under the
lifeline, read line by line, handed its next segment while it is idle, and retired at the end
(pipetune/contract.py, "Reuse"). Nothing here depends on the engine.

A process is reusable by a segment whose launch (`key`: the engine's options, the app script,
its extras and its system-parameter flags) is the same as its own: the segment's app flags go
to the idle process in its next file. Each segment it runs is a `ContractJob`: what the
lifecycle (backends/base.py) drives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from pipetune import contract, lifeline
from pipetune.backends.base import Job
from pipetune.contract import parse_event
from pipetune.errors import SegmentFailed
from pipetune.records import SystemSetting

# Each process runs under pipetune/lifeline.py, which stops the job's process group when this
# process ends, so that a crashed tuner leaves no job training on.
LIFELINE = [sys.executable, "-I", str(Path(lifeline.__file__))]
RETIRE_TIMEOUT_S = 30.0  # to let go of what it holds (a Spark context) and exit, or be killed


class LivePart(Protocol):
    """What a live setting means for one engine's jobs (backends/live.py for Spark,
    backends/torch_backend.py for torch): the app's values, the CPUs of the processes."""

    def app_values(self, setting: SystemSetting) -> dict[str, Any]:
        """The live values the app applies itself (contract.Decision.live)."""

    def expected_echo(self, setting: SystemSetting) -> dict[str, Any]:
        """What the app must say is in force at `setting` (its `system`)."""

    def place(self, job: str, setting: SystemSetting, root_pid: int, app_id: str) -> str:
        """Move the job's processes to the CPUs of `setting`; what was done, for the log."""

    def release(self, job: str) -> None:
        """Undo the job's placements."""


class JobProcess:
    """One launched process of the app, and the segments it has run."""

    def __init__(
        self,
        key: tuple[str, ...],
        proc: subprocess.Popen[str],
        next_path: Path | None,
        cds_dump: Path | None = None,
    ) -> None:
        self.key = key
        self.proc = proc
        self.next_path = next_path  # None: the process runs one segment and ends
        self.cds_dump = cds_dump  # the class-data-sharing archive it writes at its exit
        self.segments = 0  # run to their `idle`
        self.placed = False  # moved to other CPUs than its launch's (backends/live.py)
        self.app_id = ""  # the application's, from the app's `start`

    @classmethod
    def launch(
        cls,
        key: tuple[str, ...],
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        next_path: Path | None,
        cds_dump: Path | None = None,
    ) -> JobProcess:
        if next_path is not None:
            next_path.unlink(missing_ok=True)  # never a handover meant for an earlier process
            env = {**env, contract.NEXT_FILE_ENV: str(next_path)}
        proc = subprocess.Popen(
            [*LIFELINE, *argv],
            stdin=subprocess.PIPE,  # the lifeline: closed when we end, however we end
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            cwd=cwd,
            env=env,
            start_new_session=True,  # its own process group: a timeout kills the whole tree
        )
        return cls(key, proc, next_path, cds_dump)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def reusable_for(self, key: tuple[str, ...]) -> bool:
        return self.next_path is not None and self.key == key and self.alive()

    def hand_over(self, app_argv: list[str]) -> None:
        """Give the idle process its next segment: every app flag after the script (the
        launch's extras and system-parameter flags, which the key says are the same, then
        the segment's own), parsed there as at a launch."""
        assert self.next_path is not None
        handover = contract.Next(self.segments, tuple(app_argv), time.time())
        contract.write_next(self.next_path, handover)

    def retire(self) -> int | None:
        """Tell an idle process to exit and wait for it (killed if it does not); its exit
        status (0: it stopped cleanly)."""
        if self.alive() and self.next_path is not None:
            contract.write_next(self.next_path, contract.Next(self.segments))
            try:
                self.proc.wait(timeout=RETIRE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        self.kill()
        self.close()
        return self.proc.returncode

    def close(self) -> None:
        """Close the lifeline and the handover file (the process has ended or is killed)."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        if self.proc.stdout is not None and self.proc.poll() is not None:
            self.proc.stdout.close()
        if self.next_path is not None:
            self.next_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """Stop the whole process group (SIGTERM, then SIGKILL after 10 s): whatever of it is
        left, even after its leader has ended."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, PermissionError):
            return
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                return


class ContractJob(Job):
    """One segment in a launched process of the app: its output into the segment's log and
    read as events (pipetune/contract.py), its live settings placed on the process's CPUs
    (the engine's `LivePart`), its decisions written to the decision file."""

    def __init__(
        self,
        process: JobProcess,
        log: IO[str],
        live: LivePart,
        trial: str,
        decisions: Path,
        flags: dict[str, str],
        command: str,
    ) -> None:
        self.process = process
        self.log = log
        self.live = live
        self.decisions = decisions
        self.name = f"{trial}-{process.pid}"  # its placement's name (backends/live.py)
        self.reused = process.segments
        self.flags = flags  # hyperparameter → the app flag it is echoed under
        self.command = command  # names it in errors: "spark-submit exited with status 1"
        self._tail: deque[str] = deque(maxlen=40)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def app_id(self) -> str:  # the process's, kept for its reuse
        return self.process.app_id

    @app_id.setter
    def app_id(self, value: str) -> None:
        self.process.app_id = value

    def events(self) -> Iterator[dict[str, Any]]:
        stdout = self.process.proc.stdout
        if stdout is None:
            raise SegmentFailed(f"{self.command} has no output pipe", "")
        for line in stdout:
            self.log.write(line)
            self._tail.append(line)
            event = parse_event(line)
            if event is not None:
                self.log.flush()  # the log is complete up to every event, for whoever tails it
                yield event

    def place(self, setting: SystemSetting, initial: bool) -> None:
        what = self.live.place(self.name, setting, self.pid, self.app_id)
        self.log.write(f"[pipetune-backend] {'launch' if initial else 'live'} {setting}: {what}\n")
        self.process.placed = True

    def app_values(self, setting: SystemSetting) -> dict[str, Any]:
        return self.live.app_values(setting)

    def expected_echo(self, setting: SystemSetting) -> dict[str, Any]:
        return self.live.expected_echo(setting)

    def answer(self, decision: contract.Decision) -> None:
        contract.write_decision(self.decisions, decision)

    def kill(self) -> None:
        self.process.kill()

    def wait(self) -> int:
        return self.process.proc.wait()

    def release(self) -> None:
        self.live.release(self.name)

    def tail(self) -> str:
        return "".join(self._tail)
