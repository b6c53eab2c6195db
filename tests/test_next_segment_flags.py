"""The flags an app's reused process gives the next segment (contract.next_segment_argv)."""

from __future__ import annotations

from pipetune.contract import next_segment_argv

LAUNCH = [
    *("--trainSize", "600", "--seed", "0"),  # the app config's extras
    *("--batchSize", "32", "--learningRate", "0.1"),  # the first segment's hyperparameters
    *("--epochs", "1", "--checkpoint", "/r/t000/checkpoint", "--decisionFile", "/r/t000/d"),
]


def test_a_handed_over_segment_keeps_the_launchs_extras_and_takes_its_own_flags() -> None:
    handed = ["--batchSize", "64", "--learningRate", "0.05", "--epochs", "3"]
    handed += ["--checkpoint", "/r/t001/checkpoint"]
    argv = next_segment_argv(LAUNCH, handed)
    assert argv == [*LAUNCH[:8], *handed]  # later flags win in argparse
    # no contract flag of the first segment survives: not its decision file above all
    assert "--decisionFile" not in argv and "/r/t000/checkpoint" not in argv


def test_contract_flags_written_with_an_equals_sign_go_too() -> None:
    launch = ["--seed=3", "--epochs=2", "--checkpoint", "c", "--decisionTimeout=5", "--x", "y"]
    assert next_segment_argv(launch, ["--epochs", "1"]) == ["--seed=3", "--x", "y", "--epochs", "1"]
