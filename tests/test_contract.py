"""The app protocol (pipetune/contract.py): event lines, decision files, checkpoint meta, flags."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
from pathlib import Path

import pytest

from pipetune import contract
from pipetune.backends import events
from pipetune.contract import (
    Decision,
    EventError,
    await_decision,
    checkpoint_epochs,
    emit,
    epoch_event,
    format_event,
    parse_event,
    read_decision,
    read_meta,
    write_decision,
    write_meta,
)


def test_an_event_round_trips_through_one_tagged_line():
    event = epoch_event(
        3,
        12.345678,
        0.91,
        {"batchSize": 64, "learningRate": 0.05},
        eval_s=1.5,
        loss=0.25,
        samples=6000,
        system={"cores": 2, "cpus": [0, 1]},
        iteration_s=[0.5, 0.25],
    )
    line = format_event(event)
    assert line.startswith("[pipetune] {") and line.endswith("}\n") and line.count("\n") == 1
    parsed = parse_event(line)
    assert parsed == {**event, "duration_s": 12.3457}
    assert parsed["system"] == {"cores": 2, "cpus": [0, 1]}
    for other in (contract.start_event("app-1", 0, {"a": 1}, seed=3), contract.end_event(4, "/c")):
        assert parse_event(format_event(other)) == other
    assert parse_event("   " + format_event(contract.pause_event(2, 130))) == {
        "event": "pause",
        "epoch": 2,
        "iteration": 130,
    }


def test_non_finite_numbers_become_null():
    line = format_event({"event": "epoch", "loss": math.nan, "up": math.inf, "down": -math.inf})
    assert "NaN" not in line and "Infinity" not in line
    assert parse_event(line) == {"event": "epoch", "loss": None, "up": None, "down": None}


def test_emit_writes_and_flushes_one_line():
    out = io.StringIO()
    emit(contract.error_event("boom"), out)
    assert parse_event(out.getvalue()) == {"event": "error", "message": "boom"}


@pytest.mark.parametrize(
    "line",
    ["", "INFO starting Spark", '  some [pipetune] {"event": "epoch"}', "pipetune {}", "\n"],
)
def test_untagged_lines_are_not_events(line: str):
    assert parse_event(line) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[pipetune] {not json", "not JSON"),
        ("[pipetune]", "not JSON"),
        ("[pipetune] [1, 2]", 'no "event" name'),
        ('[pipetune] {"epoch": 1}', 'no "event" name'),
        ('[pipetune] {"event": 3}', 'no "event" name'),
    ],
)
def test_malformed_tagged_lines_raise(line: str, message: str):
    with pytest.raises(EventError, match=message):
        parse_event(line)


def test_the_tuner_reads_events_with_the_contracts_parser():
    from pipetune.backends import job

    assert job.parse_event is parse_event and events.EventError is EventError


# ------------------------------------------------------------------------------ decisions


def test_a_decision_round_trips_through_its_file(tmp_path: Path):
    path = tmp_path / "decision.json"
    assert read_decision(path, 1) is None  # not written yet
    decision = Decision(1, True, {"cores": 1}, 2)
    write_decision(path, decision)
    assert read_decision(path, 1) == decision
    assert json.loads(path.read_text()) == {
        "epoch": 1,
        "iteration": 0,
        "continue": True,
        "live": {"cores": 1},
        "pause_after": 2,
        "iterations": 0,
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decision.json"]  # no temp file left
    stop = Decision(3, False)
    write_decision(path, stop)
    assert read_decision(path, 3) == stop and read_decision(path, 1) is None


def test_a_decision_for_another_epoch_is_ignored(tmp_path: Path):
    path = tmp_path / "decision.json"
    write_decision(path, Decision(2, True))
    assert read_decision(path, 3) is None  # the previous pause's answer, still in place
    assert read_decision(path, 2) == Decision(2, True)


def test_a_decision_is_renamed_into_place_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "decision.json"
    write_decision(path, Decision(1, True))
    seen = []
    real_replace = os.replace

    def replace(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        # at the rename: the new decision is complete in the temp file, the old one in place
        seen.append((Decision.from_json(Path(src).read_text()), read_decision(path, 1)))
        real_replace(src, dst)

    monkeypatch.setattr(contract.os, "replace", replace)
    write_decision(path, Decision(2, False, {}, 0))
    assert seen == [(Decision(2, False), Decision(1, True))]
    assert read_decision(path, 2) == Decision(2, False)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"continue": true}',
        '{"epoch": "1"}',
        '{"epoch": 1, "live": [1]}',
        '{"epoch": 1, "pause_after": -1}',
        '{"epoch": 1, "pause_after": 1.5}',
    ],
)
def test_a_malformed_decision_reads_as_none(tmp_path: Path, text: str):
    path = tmp_path / "decision.json"
    path.write_text(text)
    assert read_decision(path, 1) is None
    with pytest.raises(ValueError):
        Decision.from_json(text)


def test_await_decision_announces_the_pause_and_waits(tmp_path: Path, capsys):
    path = tmp_path / "decision.json"
    assert await_decision(path, 4, timeout_s=0.05, poll_s=0.01) is None  # no answer in time
    write_decision(path, Decision(4, True, {"cores": 2}))
    assert await_decision(path, 4, timeout_s=1.0) == Decision(4, True, {"cores": 2})
    lines = capsys.readouterr().out.splitlines()
    assert [parse_event(line) for line in lines] == [
        {"event": "pause", "epoch": 4, "iteration": 0}
    ] * 2


def test_a_pause_inside_an_epoch_is_named_by_its_iteration_too(tmp_path: Path, capsys):
    path = tmp_path / "decision.json"
    window = Decision(4, True, {"cores": 1}, iteration=280, iterations=19)
    write_decision(path, window)
    # the answer to the pause at the epoch's end (iteration 252) is not this one's
    assert await_decision(path, 4, timeout_s=0.05, iteration=252) is None
    assert await_decision(path, 4, timeout_s=1.0, iteration=280) == window
    assert Decision.from_json(window.to_json()).iterations == 19
    with pytest.raises(ValueError):
        Decision.from_json('{"epoch": 4, "continue": true, "iterations": -3}')
    events = [parse_event(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["iteration"] for e in events if e] == [252, 280]


def test_a_window_event_carries_each_iteration_and_the_epoch_size():
    event = contract.window_event(2, [0.123456, 0.1], epoch_iterations=63, system={"cores": 1})
    assert parse_event(format_event(event)) == {
        "event": "window",
        "epoch": 2,
        "iteration_s": [0.12346, 0.1],
        "epoch_iterations": 63,
        "system": {"cores": 1},
    }


# ----------------------------------------------------------------------------- checkpoint


def test_checkpoint_epochs_of_missing_partial_and_complete_checkpoints(tmp_path: Path):
    missing = tmp_path / "none"
    assert checkpoint_epochs(missing) == 0 and read_meta(missing) is None
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "model.bin").write_bytes(b"\0" * 16)  # written before its meta.json
    assert checkpoint_epochs(partial) == 0
    (partial / contract.META_FILE).write_text('{"epochs_done": 3')  # torn
    assert checkpoint_epochs(partial) == 0
    (partial / contract.META_FILE).write_text("[3]")  # not an object
    assert checkpoint_epochs(partial) == 0
    complete = tmp_path / "complete"
    complete.mkdir()
    write_meta(complete, {"epochs_done": 3, "hyperparameters": {"lr": 0.1}, "app": "x"})
    assert checkpoint_epochs(complete) == 3
    assert read_meta(complete) == {"epochs_done": 3, "hyperparameters": {"lr": 0.1}, "app": "x"}
    write_meta(complete, {"hyperparameters": {}})
    assert checkpoint_epochs(complete) == 0  # a meta without epochs holds none


# ---------------------------------------------------------------------------------- flags


def test_standard_flags_parse_back():
    parser = argparse.ArgumentParser()
    contract.add_standard_flags(parser)
    args = parser.parse_args(contract.standard_flags(3, "/ck", Path("/tmp/d.json")))
    assert (args.epochs, args.checkpoint, args.decisionFile) == (3, "/ck", "/tmp/d.json")
    assert args.decisionTimeout == 300.0
    plain = contract.standard_flags(2, "/ck")
    assert plain == ["--epochs", "2", "--checkpoint", "/ck"]
    assert parser.parse_args(plain).decisionFile == ""
