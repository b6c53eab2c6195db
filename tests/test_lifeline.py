"""The lifeline wrapper: a job outlives neither a crashed tuner nor a finished one's pipe."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from pipetune.backends.job import LIFELINE
from tests.machine import gone_within

# a job with a grandchild, like spark-submit → JVM → Python driver; prints both pids
JOB = (
    "import subprocess, sys, time\n"
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "print(f'{__import__(\"os\").getpid()} {g.pid}', flush=True)\n"
    "time.sleep(120)\n"
)


def run_held(command: list[str]) -> tuple[int, str]:
    """Run under the lifeline with its pipe held open until the command is done."""
    job = subprocess.Popen(
        [*LIFELINE, "--", *command], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert job.stdin is not None and job.stdout is not None
    out = job.stdout.read()  # to the command's end; the pipe on stdin stays open meanwhile
    code = job.wait(timeout=30)
    job.stdin.close()
    return code, out.decode()


def test_the_command_runs_with_its_output_and_exit_status():
    assert run_held([sys.executable, "-c", "print('hello'); raise SystemExit(3)"]) == (3, "hello\n")


def test_a_killed_command_reports_its_signal():
    code, _ = run_held([sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"])
    assert code == 128 + signal.SIGKILL


def test_closing_the_pipe_stops_the_job_and_nothing_else():
    # not started in a session of its own: the lifeline makes its own group, and stops only it
    job = subprocess.Popen(
        [*LIFELINE, "--", sys.executable, "-c", JOB], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert job.stdout is not None and job.stdin is not None
    job_pid, grandchild_pid = map(int, job.stdout.readline().split())
    job.stdin.close()
    assert job.wait(timeout=15) == 128 + signal.SIGTERM
    assert gone_within(job_pid, 5) and gone_within(grandchild_pid, 5)


def test_a_tuner_killed_outright_leaves_no_job_behind(tmp_path: Path):
    # The "tuner": starts the job as the Spark backend does (own session, stdin a pipe it keeps)
    # and is then SIGKILLed, so nothing of it runs to clean up.
    tuner_code = (
        "import subprocess, sys, time\n"
        f"job = subprocess.Popen({[*LIFELINE, '--', sys.executable, '-c', JOB]!r},\n"
        "    stdin=subprocess.PIPE, stdout=sys.stdout, start_new_session=True)\n"
        "time.sleep(120)\n"
    )
    tuner = subprocess.Popen([sys.executable, "-c", tuner_code], stdout=subprocess.PIPE, text=True)
    try:
        assert tuner.stdout is not None
        job_pid, grandchild_pid = map(int, tuner.stdout.readline().split())
        assert psutil.pid_exists(job_pid) and psutil.pid_exists(grandchild_pid)
        os.kill(tuner.pid, signal.SIGKILL)
        tuner.wait()
        assert gone_within(job_pid, 15) and gone_within(grandchild_pid, 15)
    finally:
        tuner.kill()
        for pid in locals().get("job_pid", 0), locals().get("grandchild_pid", 0):
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
