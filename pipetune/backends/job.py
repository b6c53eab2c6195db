"""A running spark-submit of the app: launched under the lifeline, read line by line, handed
its next segment while it is idle, and retired at the end (pipetune/contract.py, "Reuse").

A process is reusable by a segment whose launch (`key`: the spark-submit options, the app
script, its extras and its system-parameter flags) is the same as its own: the segment's own
part (hyperparameters and the standard flags) goes to the idle process in its next file.
Each segment it runs is a `SparkJob`: what the lifecycle (backends/base.py) drives.
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
from typing import IO, Any

from pipetune import contract, lifeline
from pipetune.backends.base import Job
from pipetune.backends.live import LiveSettings
from pipetune.contract import parse_event
from pipetune.errors import SegmentFailed
from pipetune.records import SystemSetting

# Each process runs under pipetune/lifeline.py, which stops the job's process group when this
# process ends, so that a crashed tuner leaves no job training on.
LIFELINE = [sys.executable, "-I", str(Path(lifeline.__file__))]
RETIRE_TIMEOUT_S = 30.0  # to stop its Spark context and exit, before it is killed


class JobProcess:
    """One spark-submit process, and the segments it has run."""

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
        self.app_id = ""  # Spark's, from the app's `start`

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
        """Give the idle process its next segment (the app flags after the script)."""
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


class SparkJob(Job):
    """One segment in a spark-submit process: its output into the segment's log and read as
    events, its live settings placed on the process's CPUs (backends/live.py), its decisions
    written to the decision file."""

    command = "spark-submit"

    def __init__(
        self, process: JobProcess, log: IO[str], live: LiveSettings, trial: str, decisions: Path
    ) -> None:
        self.process = process
        self.log = log
        self.live = live
        self.decisions = decisions
        self.name = f"{trial}-{process.pid}"  # its placement's name (backends/live.py)
        self.reused = process.segments
        self.flags = live.app.hyperparameter_flags
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
            raise SegmentFailed("spark-submit has no output pipe", "")
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
