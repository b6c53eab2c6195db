"""Backends are found by name in one registry (backends/registry.py)."""

from __future__ import annotations

import json

import pytest

from pipetune.backends import registry
from pipetune.backends.registry import BackendInputs
from pipetune.errors import ConfigError
from pipetune.records import Role, SegmentRequest, SystemSetting
from pipetune.replay import ReplayBackend, synthetic_trace

SETTING = SystemSetting.of({"cores": 2})


def test_every_backend_is_registered_by_name() -> None:
    assert sorted(registry.BACKENDS) == ["replay", "spark-submit", "torch"]


def test_an_unknown_backend_is_a_config_error_that_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        registry.build("torch-on-the-moon", BackendInputs())
    [problem] = info.value.problems
    assert problem.path == "backend" and problem.found == "'torch-on-the-moon'"
    assert problem.expected == "one of replay, spark-submit, torch"


def test_a_builder_says_what_it_was_not_given() -> None:
    with pytest.raises(ValueError, match="replay backend is built from a trace"):
        registry.build("replay", BackendInputs())
    with pytest.raises(ValueError, match="spark-submit backend is built from a tuning config"):
        registry.build("spark-submit", BackendInputs())
    with pytest.raises(ValueError, match="torch backend is built from a tuning config"):
        registry.build("torch", BackendInputs())


def test_the_replay_is_built_from_its_trace_and_options() -> None:
    trace = synthetic_trace(1, 1, [SETTING], 2, seed=3)
    workload = trace.workloads()[0]
    inputs = BackendInputs(trace=trace, workload=workload, noise=0.1, seed=4)
    backend = registry.build("replay", inputs)
    assert isinstance(backend, ReplayBackend)
    assert (backend.workload, backend.noise, backend.seed) == (workload, 0.1, 4)
    config = trace.configs(workload)[0]
    hps = json.loads(config)
    request = SegmentRequest("t", SETTING, 2, Role.TRAIN, hps, "c", "l")
    assert [e.epoch for e in backend.run_segment(request, lambda *a: None).epochs] == [1, 2]
