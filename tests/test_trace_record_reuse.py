"""`pipetune trace record`'s reuse measurement, driven over ReplayBackends (no Spark): the
figures it records, and a recording interrupted or continued that neither loses nor repeats
them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipetune.config import load_config
from pipetune.probing.candidates import probe_candidates
from pipetune.replay import ReplayBackend, Trace, synthetic_trace
from pipetune.replay.record import GridPlan, grid_plan, record_trace
from tests.conftest import write_project


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trace, object, GridPlan, str]:
    """A source trace whose reuse figures differ per setting, and a plan of 2 configs × its
    4 settings × 4 epochs over its first workload."""
    root = tmp_path_factory.mktemp("record")
    config = load_config(write_project(root, {"search": {"trials": 2, "epochs": 4, "seed": 0}}))
    settings = probe_candidates(config.system_parameters, "grid")
    plain = synthetic_trace(1, 3, settings, 4, seed=7)
    frame = plain.frame
    rank = frame["setting"].map({s.label(): i for i, s in enumerate(settings)})
    source = Trace(frame.assign(reuse_startup_s=1.0 + rank, reuse_epoch1_ratio=0.4 + 0.1 * rank))
    workload = source.workloads()[0]
    configs = [json.loads(c) for c in source.configs(workload)[:2]]
    plan = GridPlan(configs, grid_plan(config, 2).settings, 4)
    return source, config, plan, workload


def _record(setup, out: Path, say, reuse: bool = True, source: Trace | None = None):
    traced, config, plan, workload = setup
    source = source or traced
    reusing = ReplayBackend(source, workload, reuse=True) if reuse else None
    return record_trace(
        config, ReplayBackend(source, workload), out, out.parent / "work", workload=workload,
        plan=plan, say=say, reuse_backend=reusing,
    )  # fmt: skip


def _same_groups(recorded: Trace, source: Trace, workload: str, reuse: bool = True) -> None:
    for config in recorded.configs(workload):
        for setting in recorded.settings(workload, config):
            got, want = (
                recorded.epochs(workload, config, setting),
                source.epochs(workload, config, setting),
            )
            assert [r.duration_s for r in got] == pytest.approx([r.duration_s for r in want])
            assert got[0].startup_s == pytest.approx(want[0].startup_s)
            if reuse:
                figures = recorded.reuse(workload, config, setting)
                expected = source.reuse(workload, config, setting)
                assert figures is not None and expected is not None
                assert figures.startup_s == pytest.approx(expected.startup_s)
                assert figures.epoch1_ratio == pytest.approx(expected.epoch1_ratio)
            else:
                assert recorded.reuse(workload, config, setting) is None


def test_each_setting_records_what_its_idle_process_costs(setup, tmp_path: Path):
    source, _, _, workload = setup
    said: list[str] = []
    recorded = _record(setup, tmp_path / "t.csv.gz", said.append)
    assert recorded is not None and len(recorded) == 2 * 4 * 4
    _same_groups(recorded, source, workload)
    # one host per setting: the last group recorded there, then one epoch in its process
    hosts = [line for line in said if "then one in its idle process" in line]
    assert [line.split()[0] for line in hosts] == ["[5/8]", "[6/8]", "[7/8]", "[8/8]"]
    assert sum("in the idle process: start-up" in line for line in said) == 4
    # recording again finds everything: nothing runs
    said.clear()
    again = _record(setup, tmp_path / "t.csv.gz", said.append)
    assert said == [f"continuing {tmp_path / 't.csv.gz'}: 8 of 8 group(s) already recorded"]
    assert again is not None and again.frame.equals(recorded.frame)


def test_an_interrupted_measurement_is_redone_once(setup, tmp_path: Path):
    source, _, _, workload = setup
    out = tmp_path / "t.csv.gz"

    def interrupt_at_the_first_measurement(line: str) -> None:
        if "in the idle process: start-up" in line:
            raise KeyboardInterrupt  # after the reused segment, before the trace is written

    with pytest.raises(KeyboardInterrupt):
        _record(setup, out, interrupt_at_the_first_measurement)
    partial = Trace.load(out)
    assert len(partial) == 4 * 4 and not partial.has_reuse(workload)  # the host is not in it
    said: list[str] = []
    recorded = _record(setup, out, said.append)
    assert said[0] == f"continuing {out}: 4 of 8 group(s) already recorded"
    assert recorded is not None and len(recorded) == 2 * 4 * 4  # each group once
    assert sum("in the idle process: start-up" in line for line in said) == 4
    _same_groups(recorded, source, workload)


def test_a_trace_recorded_without_reuse_is_measured_when_continued(setup, tmp_path: Path):
    source, _, _, workload = setup
    out = tmp_path / "t.csv.gz"
    before = _record(setup, out, lambda line: None, reuse=False)
    assert before is not None and not before.has_reuse(workload)
    _same_groups(before, source, workload, reuse=False)
    said: list[str] = []
    after = _record(setup, out, said.append)
    assert after is not None and len(after) == len(before)
    assert sum("a host segment, then one in its idle process" in line for line in said) == 4
    _same_groups(after, source, workload)  # the groups as they were, now with the figures
    columns = [c for c in before.frame.columns if not c.startswith("reuse_")]
    assert after.frame[columns].equals(before.frame[columns])


def test_an_app_that_does_not_wait_idle_records_no_figures(setup, tmp_path: Path):
    source, _, _, workload = setup
    plain = Trace(source.frame.assign(reuse_startup_s=None, reuse_epoch1_ratio=None))
    said: list[str] = []
    recorded = _record(setup, tmp_path / "t.csv.gz", said.append, source=plain)
    assert recorded is not None and len(recorded) == 2 * 4 * 4  # every group kept
    assert not recorded.has_reuse(workload)
    not_recorded = [line for line in said if "not recorded" in line]
    assert len(not_recorded) == 1 and "does not wait idle" in not_recorded[0]
    _same_groups(recorded, plain, workload, reuse=False)
