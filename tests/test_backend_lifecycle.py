"""The segment lifecycle every backend shares (backends/base.py, backends/lifecycle.py),
driven by a scripted job: pauses and decisions, live settings placed then told and their
echo checked, placements that fail, the watchdog, Ctrl-C, idle processes, contract errors."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pipetune import contract
from pipetune.backends.base import Backend, Job
from pipetune.backends.events import epoch_report, window_report
from pipetune.backends.meter import SegmentMeter
from pipetune.errors import AppContractError, SegmentFailed
from pipetune.placement import PlacementError
from pipetune.records import (
    Decision,
    Energy,
    EpochReport,
    Pause,
    Role,
    SegmentRequest,
    SystemSetting,
    WindowReport,
)

C1, C2 = SystemSetting.of({"cores": 1}), SystemSetting.of({"cores": 2})
HPS = {"batch_size": 32}
Script = Callable[["ScriptedJob"], Iterator[dict[str, Any]]]


class ScriptedJob(Job):
    """An app that prints what its script says; the script reads the answers it was given."""

    command = "scripted"

    def __init__(self, script: Script, status: int = 0, unplaceable: tuple[str, ...] = ()):
        self.script = script
        self.status = status
        self.unplaceable = unplaceable
        self.placed: list[tuple[str, bool]] = []
        self.answers: list[contract.Decision] = []
        self.killed = threading.Event()
        self.released = False

    def events(self) -> Iterator[dict[str, Any]]:
        yield from self.script(self)

    def place(self, setting: SystemSetting, initial: bool) -> None:
        if setting.label() in self.unplaceable:
            raise PlacementError(f"no CPUs for {setting}")
        self.placed.append((setting.label(), initial))

    def app_values(self, setting: SystemSetting) -> dict[str, Any]:
        return {"cores": int(setting.get("cores") or 0)}

    def expected_echo(self, setting: SystemSetting) -> dict[str, Any]:
        return {"cores": int(setting.get("cores") or 0)}

    def answer(self, decision: contract.Decision) -> None:
        self.answers.append(decision)

    def kill(self) -> None:
        self.killed.set()

    def wait(self) -> int:
        return self.status

    def release(self) -> None:
        self.released = True


class FixedMeter(SegmentMeter):
    """Every epoch 1 J, every window 0.5 J, every stint 2 s and 3 J, every switch 0.25 s."""

    def epoch(self, event: dict[str, Any]) -> EpochReport:
        return epoch_report(event, Energy(1.0, "test"))

    def window(self, event: dict[str, Any], warmup: int) -> WindowReport:
        return window_report(event, warmup, Energy(0.5, "test"))

    def cut(self) -> tuple[float, Energy]:
        return 2.0, Energy(3.0, "test")

    def switch_s(self, paused_at: float) -> float:
        return 0.25


class ScriptedBackend(Backend[ScriptedJob]):
    def __init__(self, job: ScriptedJob, timeout_s: float | None = None) -> None:
        super().__init__()
        self.job = job
        self.timeout_s = timeout_s
        self.finished: list[tuple[bool, bool]] = []  # (idle, ended) of each segment

    def _start(self, request: SegmentRequest) -> ScriptedJob:
        return self.job

    def _meter(self, job: ScriptedJob, request: SegmentRequest) -> SegmentMeter:
        return FixedMeter()

    def _finished(self, job: ScriptedJob, idle: bool, ended: bool) -> None:
        self.finished.append((idle, ended))


def live(epochs: int = 2) -> SegmentRequest:
    """cores=1 in a process launched at cores=2, pausing after its first epoch."""
    return SegmentRequest("t0", C1, epochs, Role.PROBE, HPS, "c", "l", decide_after=1, launch=C2)


def epoch(n: int, cores: int) -> dict[str, Any]:
    return contract.epoch_event(n, 1.0, 0.5, {"batch_size": 32}, system={"cores": cores})


def start(windows: bool = True) -> dict[str, Any]:
    return contract.start_event("app-1", 0, {}, windows=windows)


def ignore(report: EpochReport, setting: SystemSetting, role: Role) -> None:
    return None


def to(setting: SystemSetting, pause_after: int = 0, **kw: Any) -> Callable[[Pause], Decision]:
    return lambda pause: Decision(setting, Role.TRAIN, pause_after, **kw)


def switch_script(second_echo: int) -> Script:
    def script(job: ScriptedJob) -> Iterator[dict[str, Any]]:
        yield start()
        yield contract.pause_event(0)  # right after start: placed at cores=1
        yield epoch(1, 1)
        yield contract.pause_event(1)
        yield epoch(2, second_echo)
        yield contract.end_event(2, "c")

    return script


def test_a_live_switch_is_placed_then_told_and_becomes_a_second_stint() -> None:
    job = ScriptedJob(switch_script(second_echo=2))
    backend = ScriptedBackend(job)
    seen: list[tuple[int, str, Role]] = []
    pauses: list[Pause] = []

    def decide(pause: Pause) -> Decision:
        pauses.append(pause)
        return Decision(C2, Role.TRAIN)

    result = backend.run_segment(
        live(), lambda e, s, r: seen.append((e.epoch, s.label(), r)), decide
    )
    assert job.placed == [("cores=1", True), ("cores=2", False)]
    assert [(a.epoch, a.go_on, a.live, a.pause_after) for a in job.answers] == [
        (0, True, {"cores": 1}, 1),  # the segment's setting, and when to pause
        (1, True, {"cores": 2}, 0),
    ]
    assert seen == [(1, "cores=1", Role.PROBE), (2, "cores=2", Role.TRAIN)]
    [pause] = pauses
    assert (pause.setting, [e.epoch for e in pause.epochs], pause.wall_s) == (C1, [1], 2.0)
    first, second = result.stints
    assert (first.setting, first.wall_s, first.energy.joules, first.switch_s) == (C1, 2.0, 3.0, 0)
    assert (second.setting, second.role, second.switch_s) == (C2, Role.TRAIN, 0.25)
    assert [e.epoch for e in second.epochs] == [2] and result.app_id == "app-1"
    assert backend.finished == [(False, True)] and job.released and not job.killed.is_set()


def test_an_echo_that_differs_from_what_was_placed_fails_the_segment() -> None:
    job = ScriptedJob(switch_script(second_echo=1))  # still says cores=1 after the switch
    backend = ScriptedBackend(job)
    with pytest.raises(AppContractError, match="system cores: in force should be 2"):
        backend.run_segment(live(), ignore, to(C2))
    assert job.killed.is_set() and job.released and backend.finished == [(False, False)]


def test_a_setting_that_cannot_be_placed_is_a_failed_stint_and_a_stop() -> None:
    def script(job: ScriptedJob) -> Iterator[dict[str, Any]]:
        yield start()
        yield contract.pause_event(0)
        yield epoch(1, 1)
        yield contract.pause_event(1)
        assert not job.answers[-1].go_on  # told to stop: it saves and ends
        yield contract.end_event(1, "c")

    job = ScriptedJob(script, unplaceable=("cores=2",))
    result = ScriptedBackend(job).run_segment(live(), ignore, to(C2))
    ok, failed = result.stints
    assert ok.setting == C1 and [e.epoch for e in ok.epochs] == [1] and ok.error is None
    assert failed.setting == C2 and failed.epochs == () and "could not place" in str(failed.error)


def test_a_segment_whose_setting_cannot_be_placed_at_all_stops_before_its_first_epoch() -> None:
    def script(job: ScriptedJob) -> Iterator[dict[str, Any]]:
        yield start()
        yield contract.pause_event(0)
        yield contract.end_event(0, "c")

    job = ScriptedJob(script, unplaceable=("cores=1",))
    result = ScriptedBackend(job).run_segment(live(), ignore, to(C2))
    [only] = result.stints
    assert only.epochs == () and "could not place the job at cores=1" in str(only.error)
    assert [a.go_on for a in job.answers] == [False]


def test_windows_are_asked_only_of_an_app_that_can_pause_inside_an_epoch() -> None:
    def script(windows: bool) -> Script:
        def events(job: ScriptedJob) -> Iterator[dict[str, Any]]:
            yield start(windows)
            yield contract.pause_event(0)
            yield epoch(1, 1)
            yield contract.pause_event(1)
            if job.answers[-1].iterations:
                yield contract.window_event(2, [0.1] * 5, epoch_iterations=19, system={"cores": 1})
                yield contract.pause_event(1, 24)
            yield epoch(2, 1)
            yield contract.end_event(2, "c")

        return events

    steps = iter([Decision(C1, Role.PROBE, 0, iterations=5, warmup=2), Decision(C1)])
    job = ScriptedJob(script(windows=True))
    result = ScriptedBackend(job).run_segment(live(), ignore, lambda p: next(steps))
    window = result.stints[1].window
    assert window is not None and (len(window.iteration_s), window.warmup) == (5, 2)
    assert [(a.iterations, a.pause_after) for a in job.answers[1:]] == [(5, 0), (0, 0)]

    job = ScriptedJob(script(windows=False))  # a window is asked as one epoch instead
    ScriptedBackend(job).run_segment(live(), ignore, to(C1, iterations=5))
    assert (job.answers[1].iterations, job.answers[1].pause_after) == (0, 1)


def test_a_job_past_its_time_limit_is_killed_and_the_segment_fails() -> None:
    def hangs(job: ScriptedJob) -> Iterator[dict[str, Any]]:
        yield start()
        job.killed.wait(timeout=30)  # the process prints nothing until it is killed

    job = ScriptedJob(hangs, status=-15)
    backend = ScriptedBackend(job, timeout_s=0.2)
    with pytest.raises(SegmentFailed, match=r"timed out after 0\.2 s"):
        backend.run_segment(live(), ignore)
    assert job.killed.is_set() and backend.finished == [(False, False)]


def test_ctrl_c_in_the_middle_kills_the_job_and_goes_on_up() -> None:
    def interrupted(report: EpochReport, setting: SystemSetting, role: Role) -> None:
        raise KeyboardInterrupt

    job = ScriptedJob(switch_script(second_echo=2))
    backend = ScriptedBackend(job)
    with pytest.raises(KeyboardInterrupt):
        backend.run_segment(live(), interrupted, to(C2))
    assert job.killed.is_set() and job.released and backend._running is None


def test_an_app_that_goes_idle_is_handed_back_for_the_next_segment() -> None:
    def script(job: ScriptedJob) -> Iterator[dict[str, Any]]:
        yield start()
        yield epoch(1, 1)
        yield contract.end_event(1, "c")
        yield contract.idle_event(1)
        raise AssertionError("read past idle: the process waits for its next segment")

    plain = SegmentRequest("t0", C1, 1, Role.TRAIN, HPS, "c", "l")
    job = ScriptedJob(script, status=1)  # never asked: an idle process has not exited
    backend = ScriptedBackend(job)
    result = backend.run_segment(plain, ignore)
    assert [e.epoch for e in result.epochs] == [1] and backend.finished == [(True, True)]
    assert job.answers == [] and job.placed == []  # no decision file: no pause at all


@pytest.mark.parametrize(
    ("events", "status", "error", "message"),
    [
        ([start(), epoch(1, 1), contract.end_event(1, "c")], 0, AppContractError, "asked for 2"),
        ([start(), epoch(1, 1)], 3, SegmentFailed, "scripted exited with status 3"),
        ([start(), contract.idle_event(0)], 0, AppContractError, "idle before the end"),
        ([start(), contract.pause_event(0), contract.pause_event(1)], 0, AppContractError, "told"),
    ],
)
def test_an_app_that_breaks_the_contract_fails_its_segment(
    events: list[dict[str, Any]], status: int, error: type[Exception], message: str
) -> None:
    job = ScriptedJob(lambda job: iter(events), status=status)
    request = SegmentRequest("t0", C1, 2, Role.TRAIN, HPS, "c", "l")
    if events[1]["event"] == contract.PAUSE:  # placement refused: told to stop, it pauses
        job.unplaceable = ("cores=1",)
        request = live()
    with pytest.raises(error, match=message):
        ScriptedBackend(job).run_segment(request, ignore)


def test_a_hyperparameter_the_app_did_not_receive_fails_the_segment() -> None:
    def script(job: ScriptedJob) -> Iterator[dict[str, Any]]:
        yield start()
        yield contract.epoch_event(1, 1.0, 0.5, {"batch_size": 64})
        yield contract.end_event(1, "c")

    plain = SegmentRequest("t0", C1, 1, Role.TRAIN, HPS, "c", "l")
    with pytest.raises(AppContractError, match="batch_size"):
        ScriptedBackend(ScriptedJob(script)).run_segment(plain, ignore)
