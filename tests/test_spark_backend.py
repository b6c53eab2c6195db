"""Real BigDL training through spark-submit: local Spark and a loopback standalone cluster."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipetune.backends.live import job_tree
from pipetune.backends.spark import SparkSubmitBackend
from pipetune.config import load_config
from pipetune.contract import parse_event
from pipetune.placement import first_cpus, stray_threads, thread_cpus
from pipetune.records import Decision, EpochReport, Pause, Role, SegmentRequest, SystemSetting
from pipetune.spark_env import discover
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.estimate import CpuPowerModel, executor_processes
from tests.conftest import write_project
from tests.spark_cluster import standalone_cluster

pytestmark = pytest.mark.spark
HPS = {"batch_size": 32, "learning_rate": 0.05, "learning_rate_decay": 0.001}


OPEN: list[SparkSubmitBackend] = []


@pytest.fixture(autouse=True)
def _close_backends() -> Iterator[None]:
    """Each test's backends let go of their idle processes (on a cluster: their executors)."""
    yield
    while OPEN:
        OPEN.pop().close()


def backend_for(
    tmp_path: Path, app: dict | None = None, conf: dict | None = None
) -> SparkSubmitBackend:
    cfg = load_config(write_project(tmp_path, conf, app))
    backend = SparkSubmitBackend(
        cfg.app, discover(), EnergySource(CpuPowerModel(10.0, 5.0)), cwd=tmp_path
    )
    OPEN.append(backend)
    return backend


def request(
    tmp_path: Path,
    trial: str,
    setting: dict,
    epochs: int,
    role: Role = Role.TRAIN,
    hps: dict | None = None,
) -> SegmentRequest:
    return SegmentRequest(
        trial,
        SystemSetting.of(setting),
        epochs,
        role,
        hps or HPS,
        str(tmp_path / trial / "checkpoint"),
        str(tmp_path / trial / "seg.log"),
    )


def test_segments_continue_from_the_trials_own_checkpoint(tmp_path: Path) -> None:
    backend = backend_for(tmp_path)
    seen: list[EpochReport] = []
    first = backend.run_segment(
        request(tmp_path, "t0", {"cores": "2"}, 2), lambda e, s, r: seen.append(e)
    )
    assert [e.epoch for e in first.epochs] == [1, 2] and seen == first.epochs
    assert first.startup_s > 1.0  # JVM + Spark + data: measured apart from the epochs
    # ... and split into its phases: the launch up to the app's Python, the app's own phases,
    # the checkpoint save and the teardown; together they are (most of) that start-up
    phases = first.startup_phases
    named = ["launch", "imports", "checks", "spark context", "data", "model", "save", "teardown"]
    assert list(phases) == named and all(phases[p] >= 0 for p in named)
    assert phases["launch"] > 0.2 and phases["spark context"] > 0.2  # a JVM each, at least
    assert sum(phases.values()) <= first.startup_s + 0.5
    # the driver JVM maps the class-data-sharing archive, or writes it when there is none yet
    log = (tmp_path / "t0" / "seg.log").read_text()
    assert "class data sharing: -XX:SharedArchiveFile=" in log or "ArchiveClassesAtExit" in log
    # (a process that made it writes it when it exits: this one waits idle for a next segment)
    assert backend.cds is not None
    idle = backend._idle
    assert backend.cds.archive.is_file() or (idle is not None and idle.cds_dump is not None)
    assert first.energy.source == "estimate" and first.energy.joules > 0
    assert all(e.energy.joules > 0 and e.duration_s > 0 for e in first.epochs)
    # every sampled hyperparameter reached the app (it echoes what it parsed)
    assert first.epochs[0].echoed["batchSize"] == 32
    assert first.epochs[0].echoed["learningRateDecay"] == pytest.approx(0.001)

    # a probe that may go on: it pauses after one epoch; told to stop, it saves and ends there
    pauses: list[Pause] = []

    def stop(pause: Pause) -> Decision:
        pauses.append(pause)
        return Decision(None)

    probe = dataclasses.replace(
        request(tmp_path, "t0", {"cores": "1"}, 2, Role.PROBE), decide_after=1
    )
    second = backend.run_segment(probe, ignore, stop)
    assert [e.epoch for e in second.epochs] == [3]  # resumed: the epoch counter continues
    assert len(second.stints) == 1 and second.stints[0].role is Role.PROBE
    assert [e.epoch for e in pauses[0].epochs] == [3] and 0 < pauses[0].wall_s <= second.wall_s
    meta = json.loads((tmp_path / "t0" / "checkpoint" / "meta.json").read_text())
    assert meta["epochs_done"] == 3
    assert second.epochs[0].accuracy > 0.5  # learns from real digits, well above chance (0.1)

    # a different trial starts from scratch, never from t0's weights; told to go on after its
    # first epoch, it trains the second in the same process: one start-up for both
    fresh = dataclasses.replace(request(tmp_path, "t1", {"cores": "2"}, 2), decide_after=1)
    other = backend.run_segment(fresh, ignore, lambda p: Decision(p.setting, Role.TRAIN))
    assert [e.epoch for e in other.epochs] == [1, 2]
    head, tail = other.stints
    # no second start-up: going on cost a pause, and the tail's non-epoch time is only the
    # checkpoint save and teardown at its end
    assert tail.switch_s < 1.0 and tail.startup_s < head.startup_s
    meta = json.loads((tmp_path / "t1" / "checkpoint" / "meta.json").read_text())
    assert meta["epochs_done"] == 2


def ignore(report: EpochReport, setting: SystemSetting, role: Role) -> None:
    return None


def test_a_live_switch_moves_every_thread_and_the_engine(tmp_path: Path) -> None:
    """Launched at cores=2, placed at cores=1, then switched live 1 → 2 → 1: after each
    switch every thread of every process of the job runs on the new CPUs, and the app echoes
    the engine's new core count."""
    backend = backend_for(tmp_path)
    cpus = backend.env.cpus
    if len(cpus) < 2:
        pytest.fail(f"this test needs 2 CPUs, the tuner may use {list(cpus)}")
    schedule = iter(["2", "1"])
    seen: list[tuple[int, dict, list]] = []

    def on_epoch(report: EpochReport, setting: SystemSetting, role: Role) -> None:
        job = backend._running
        assert job is not None
        pids = job_tree(job.pid)
        want = first_cpus(cpus, int(setting.get("cores") or 0))
        seen.append((report.epoch, report.system, stray_threads(pids, want)))

    def decide(pause: Pause) -> Decision:
        return Decision(SystemSetting.of({"cores": next(schedule)}), Role.PROBE, 1)

    live = dataclasses.replace(
        request(tmp_path, "t0", {"cores": "1"}, 3, Role.PROBE),
        decide_after=1,
        launch=SystemSetting.of({"cores": "2"}),
    )
    result = backend.run_segment(live, on_epoch, decide)
    assert [s.setting.get("cores") for s in result.stints] == ["1", "2", "1"]
    assert [epoch for epoch, _, _ in seen] == [1, 2, 3]
    for (epoch, system, stray), cores in zip(seen, (1, 2, 1), strict=True):
        assert system == {"cores": cores, "cpus": list(first_cpus(cpus, cores))}, epoch
        assert stray == [], f"epoch {epoch}: threads off the CPUs of cores={cores}: {stray}"
    assert all(s.startup_s < 2.0 for s in result.stints[1:-1])  # a live switch, no restart
    log = (tmp_path / "t0" / "seg.log").read_text()
    assert "local[2]" in log and "live cores=2" in log and "live cores=1" in log


def test_window_probes_pause_inside_epochs_and_leave_the_epochs_as_they_were(
    tmp_path: Path,
) -> None:
    """600 samples at batch 32: 19 iterations an epoch. After epoch 1, windows of 5 (at
    cores=1), 7 and 10 iterations (at cores=2; the last one runs over epoch 2's end) pause
    inside epochs; every epoch is still reported once, validated, with all its 19 iterations,
    and the job trains on to its end."""
    backend = backend_for(tmp_path)
    c1, c2 = SystemSetting.of({"cores": "1"}), SystemSetting.of({"cores": "2"})
    steps = iter(
        [
            Decision(c1, Role.PROBE, 0, "", iterations=5, warmup=2),
            Decision(c2, Role.PROBE, 0, "", iterations=7, warmup=2),
            Decision(c2, Role.PROBE, 0, "", iterations=10),
            Decision(c2, Role.TRAIN),
        ]
    )
    seen: list[EpochReport] = []
    job = dataclasses.replace(
        request(tmp_path, "t0", {"cores": "2"}, 3, Role.WARMUP), decide_after=1
    )
    result = backend.run_segment(job, lambda e, s, r: seen.append(e), lambda p: next(steps))
    assert [e.epoch for e in seen] == [1, 2, 3]
    assert [e.iterations for e in seen] == [19, 19, 19]  # windows take nothing from an epoch
    assert all(0.0 < e.accuracy <= 1.0 for e in seen) and seen[-1].accuracy > 0.5
    stints = result.stints
    assert [(s.role, s.setting.get("cores")) for s in stints] == [
        (Role.WARMUP, "2"),
        (Role.PROBE, "1"),
        (Role.PROBE, "2"),
        (Role.PROBE, "2"),
        (Role.TRAIN, "2"),
    ]
    windows = [s.window for s in stints[1:4]]
    assert all(w is not None for w in windows)
    assert [len(w.iteration_s) for w in windows if w] == [5, 7, 10]
    assert [w.warmup for w in windows if w] == [2, 2, 0]
    assert [w.epoch for w in windows if w] == [2, 2, 3]  # the last one ended in epoch 3
    assert [w.system["cores"] for w in windows if w] == [1, 2, 2]
    assert [[e.epoch for e in s.epochs] for s in stints] == [[1], [], [], [2], [3]]
    assert all(w.energy.joules > 0 for w in windows if w)
    assert all(s.switch_s < 2.0 for s in stints[1:])  # live: no restart
    meta = json.loads((tmp_path / "t0" / "checkpoint" / "meta.json").read_text())
    assert meta["epochs_done"] == 3
    assert meta["optimizer_state"]["neval"] == 3 * 19 + 1  # BigDL counts from 1


def test_standalone_cluster_runs_a_segment_on_executors(tmp_path: Path) -> None:
    with standalone_cluster(tmp_path) as master:
        backend = backend_for(
            tmp_path, {"master": master, "num_executors": 2, "executor_memory": "1g"}
        )
        result = backend.run_segment(
            request(tmp_path, "t0", {"cores": "2", "memory": "1g"}, 1), ignore
        )
        backend.close()  # while its master is still up
    assert [e.epoch for e in result.epochs] == [1]
    assert result.app_id.startswith("app-")
    log = (tmp_path / "t0" / "seg.log").read_text()
    assert f"--master {master}" in log and "--total-executor-cores 2 --executor-cores 1" in log
    executors = list((tmp_path / "worker" / result.app_id).iterdir())
    assert len(executors) == 2  # cores split over num_executors executors


def test_standalone_executors_take_cores_live_on_their_own_cpus(tmp_path: Path) -> None:
    """On a cluster the executors of the application (found by app id) are re-pinned, each on
    its own CPUs; BigDL's core number reaches them at the next epoch."""
    cpus = discover().cpus
    if len(cpus) < 2:
        pytest.fail(f"this test needs 2 CPUs, the tuner may use {list(cpus)}")
    with standalone_cluster(tmp_path) as master:
        # one executor: cores 1 → 2 live
        backend = backend_for(tmp_path, {"master": master, "executor_memory": "1g"})
        seen: list[tuple[dict, list]] = []

        def on_epoch(report: EpochReport, setting: SystemSetting, role: Role) -> None:
            executors = [p.pid for p in executor_processes(backend_app_id(tmp_path, "t0"))]
            want = first_cpus(cpus, int(setting.get("cores") or 0))
            seen.append((report.system, stray_threads(executors, want) if executors else ["?"]))

        grow = dataclasses.replace(
            request(tmp_path, "t0", {"cores": "1"}, 2, Role.PROBE),
            decide_after=1,
            launch=SystemSetting.of({"cores": "2"}),
        )
        backend.run_segment(grow, on_epoch, lambda p: Decision(SystemSetting.of({"cores": "2"})))
        assert [system["cores"] for system, _ in seen] == [1, 2]
        assert [stray for _, stray in seen] == [[], []]

        backend.close()  # its idle application holds the cluster's cores
        # two executors sharing this host: disjoint CPUs, one each
        backend = backend_for(
            tmp_path, {"master": master, "num_executors": 2, "executor_memory": "1g"}
        )
        placed: list[list[frozenset[int]]] = []

        def where(report: EpochReport, setting: SystemSetting, role: Role) -> None:
            app_id = backend_app_id(tmp_path, "t1")
            executors = sorted(
                p.pid for p in executor_processes(app_id) if "--app-id" in p.cmdline()
            )
            placed.append([frozenset().union(*thread_cpus(pid).values()) for pid in executors])

        two = dataclasses.replace(
            request(tmp_path, "t1", {"cores": "2"}, 1), launch=SystemSetting.of({"cores": "2"})
        )
        backend.run_segment(two, where)
        backend.close()
    assert len(placed) == 1 and len(placed[0]) == 2
    assert placed[0][0].isdisjoint(placed[0][1]) and all(len(c) == 1 for c in placed[0])


def backend_app_id(tmp_path: Path, trial: str) -> str:
    """The application id of a running segment, from its start event in the log."""
    for line in (tmp_path / trial / "seg.log").read_text().splitlines():
        event = parse_event(line) if line.startswith("[pipetune]") else None
        if event and event["event"] == "start":
            return str(event["app_id"])
    return ""


def test_a_failing_segment_is_reported_with_its_log(tmp_path: Path) -> None:
    backend = backend_for(tmp_path)
    from pipetune.errors import SegmentFailed

    bad = request(tmp_path, "t0", {"cores": "1"}, 1, hps={**HPS, "batch_size": -5})
    with pytest.raises(SegmentFailed) as info:
        backend.run_segment(bad, ignore)
    assert "exited with status" in str(info.value)
    assert not (tmp_path / "t0" / "checkpoint").exists()
