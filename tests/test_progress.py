"""Progress: plain lines where the output is not a terminal (their text is what scripts and
logs read), nothing with --quiet, a live display with the time left on a terminal."""

from __future__ import annotations

import io
import re
import time

import pytest

from pipetune.progress import Progress
from pipetune.progress_live import RunStatus, clock_text
from pipetune.records import Role, SystemSetting

A = SystemSetting.of({"cores": "2"})
B = SystemSetting.of({"cores": "1"})
DONE = {
    "status": "done",
    "accuracy": 0.9,
    "system": {"chosen": {"cores": "2"}, "source": "probed"},
    "time": {"total_s": 30.2},
    "energy": {"joules": 101.4, "source": "estimate"},
}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def a_trial(progress: Progress) -> None:
    progress.note("run directory: runs/x")
    progress.trial_started("t000", 0, 2, {"learning_rate": 0.05, "batch_size": 128})
    progress.segment_started(A, Role.WARMUP, 1, 4)
    progress.epoch(A, Role.WARMUP, 1, 4, 5.04, 0.5)
    progress.going_on(B, Role.PROBE, window=True)
    progress.going_on(A, Role.TRAIN, window=False)
    progress.epoch(A, Role.TRAIN, 2, 4, 4.0, 0.61)
    progress.segment_failed(B, "exit 1")
    progress.trial_finished(DONE)


def test_plain_lines_when_the_output_is_not_a_terminal() -> None:
    out = io.StringIO()
    a_trial(Progress(stream=out))
    trial = "trial 1/2 t000 [learning_rate=0.05 batch_size=128]"
    assert out.getvalue().splitlines() == [
        "run directory: runs/x",
        f"{trial} cores=2 warm-up epoch 1/4 5.0 s/epoch acc 0.500",
        f"{trial} cores=2 train epoch 2/4 4.0 s/epoch acc 0.610",
        f"{trial} cores=1 FAILED: exit 1",
        f"{trial} done: accuracy 0.900, chosen cores=2 (probed), 30 s, 101 J (estimate)",
    ]


def test_quiet_writes_nothing_even_on_a_terminal() -> None:
    out = Terminal()
    a_trial(Progress(quiet=True, stream=out))
    assert out.getvalue() == ""


def test_a_terminal_shows_where_the_run_is_and_the_time_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # one line per redraw
    out = Terminal()
    progress = Progress(stream=out)
    progress.trial_started("t000", 0, 2, {"learning_rate": 0.05})
    progress.segment_started(A, Role.WARMUP, 1, 4)
    time.sleep(0.05)
    progress.epoch(A, Role.WARMUP, 1, 4, 5.04, 0.5)
    progress.going_on(B, Role.PROBE, window=True)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # without the ANSI codes
    assert "trial 1/2 t000" in shown
    assert "epoch 1/4 · cores=2 · start-up" in shown
    assert "epoch 2/4 · cores=1 · probe window" in shown
    assert re.search(r"elapsed 0:00 · ETA 0:0\d", shown), shown
    progress.trial_finished(DONE)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert "trial 1/2 t000 [learning_rate=0.05] done: accuracy 0.900" in shown
    assert progress._display is None  # off the terminal between trials


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_time_left_comes_from_the_epochs_measured_so_far() -> None:
    clock = Clock()
    status = RunStatus(clock=clock)
    status.trial_started(
        "t001",
        1,
        3,
    )  # resumed: trial 2 of 3, the first one done before
    assert status.eta_s() is None and "ETA –" in status.line()
    clock.now += 30.0  # start-up and epoch 1
    status.epoch_done(1, 4, "cores=2", "probe")
    # 30 s per epoch so far; 3 epochs left in this trial and 4 in the last one
    assert status.epochs_left() == 7 and status.eta_s() == 210.0
    clock.now += 10.0
    status.epoch_done(2, 4, "cores=2", "train")
    assert status.eta_s() == 20.0 * 6
    assert status.done_fraction() == (6, 12)
    assert status.line() == "epoch 3/4 · cores=2 · train · elapsed 0:40 · ETA 2:00"
    assert clock_text(3725) == "1:02:05"
