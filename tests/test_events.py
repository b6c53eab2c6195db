from __future__ import annotations

import pytest

from pipetune.backends.events import echo_mismatches, epoch_report
from pipetune.contract import EventError, parse_event
from pipetune.records import Energy

LINE = (
    '[pipetune] {"event": "epoch", "epoch": 3, "duration_s": 5.5, "eval_s": 0.5, "loss": 0.31, '
    '"accuracy": 0.92, "samples": 2000, "hyperparameters": {"batchSize": 64, "learningRate": 0.05}}'
)


def test_untagged_lines_are_ignored() -> None:
    assert parse_event("2026-11-26 INFO DistriOptimizer: [Epoch 1 0/2000]") is None
    assert parse_event("") is None


def test_epoch_line_parses_into_a_report() -> None:
    event = parse_event(LINE + "\n")
    assert event is not None and event["event"] == "epoch"
    report = epoch_report(event, Energy(12.0, "estimate"))
    assert (report.epoch, report.duration_s, report.eval_s, report.accuracy) == (3, 5.5, 0.5, 0.92)
    assert report.loss == 0.31 and report.wall_s == 6.0
    assert report.echoed == {"batchSize": 64, "learningRate": 0.05}
    assert report.energy == Energy(12.0, "estimate")


@pytest.mark.parametrize(
    "bad",
    [
        "[pipetune] {not json",
        '[pipetune] ["a list"]',
        '[pipetune] {"epoch": 1}',
    ],
)
def test_malformed_tagged_lines_are_errors(bad: str) -> None:
    with pytest.raises(EventError):
        parse_event(bad)


@pytest.mark.parametrize(
    "fields",
    [
        '"epoch": 0, "duration_s": 1, "accuracy": 0.5',
        '"epoch": 1, "duration_s": 1, "accuracy": 1.5',
        '"epoch": 1, "accuracy": 0.5',
    ],
)
def test_out_of_range_epochs_are_errors(fields: str) -> None:
    event = parse_event('[pipetune] {"event": "epoch", ' + fields + "}")
    assert event is not None
    with pytest.raises(EventError):
        epoch_report(event, Energy.zero())


def test_nan_loss_becomes_none() -> None:
    event = {"event": "epoch", "epoch": 1, "duration_s": 1.0, "accuracy": 0.1, "loss": float("nan")}
    assert epoch_report(event, Energy.zero()).loss is None


def test_echo_check_finds_hyperparameters_that_did_not_arrive() -> None:
    flags = {"batch_size": "batchSize", "learning_rate": "learningRate"}
    assert (
        echo_mismatches(
            {"batch_size": 64, "learning_rate": 0.05},
            flags,
            {"batchSize": 64, "learningRate": 0.05000000001},
        )
        == []
    )
    wrong = echo_mismatches({"batch_size": 64, "learning_rate": 0.05}, flags, {"batchSize": 128})
    assert wrong == [
        "batch_size (--batchSize): sent 64, app echoed 128",
        "learning_rate (--learningRate): sent 0.05, app echoed None",
    ]
