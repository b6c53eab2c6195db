"""Persistence as data: JSON round trip, atomic writes, and unusable files rejected with reasons
(never unpickled)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from pipetune.errors import PipeTuneError
from pipetune.probing.objective import Objective
from pipetune.recognition import (
    ModelUnusable,
    Recognizer,
    RecognizerSettings,
    load,
    persistence,
    save,
)
from tests.test_recognition_profiles import BEST, DURATION, FAR, KNOWN, observation, training_set


@pytest.fixture(scope="module")
def rec() -> Recognizer:
    r = Recognizer(DURATION, RecognizerSettings(refit_every=1000))
    rng = np.random.default_rng(1)
    for obs in training_set(rng):
        r.observe(obs)
    assert r.fit()
    r.observe(
        observation("lenet5-mnist", rng, best={"cores": "1", "memory": "2g"})
    )  # a replacement
    r.observe(observation("cnn-news20", rng))  # pending, not yet in the model
    return r


@pytest.fixture
def saved(rec, tmp_path) -> Path:
    path = tmp_path / "recognition.json"
    save(rec, path)
    return path


def queries() -> list:
    rng = np.random.default_rng(99)
    return [observation(j, rng, batch=b, probed=False) for j in (*KNOWN, FAR) for b in (64, 128)]


def test_round_trip_gives_identical_lookups_and_description(rec, saved):
    loaded = load(saved, DURATION)
    assert [loaded.lookup(q) for q in queries()] == [rec.lookup(q) for q in queries()]
    assert loaded.describe() == rec.describe()
    assert loaded.pending == rec.pending == 2 and len(loaded.observations) == 20
    assert loaded.settings == rec.settings
    assert persistence.to_data(loaded) == persistence.to_data(rec)
    assert len(loaded.knowledge.history) == 1
    # The stored observations are enough to refit to the same model.
    twin = load(saved, DURATION)
    rec_copy = load(saved, DURATION)
    assert twin.fit() and rec_copy.fit()
    assert np.array_equal(twin.model.centroids, rec_copy.model.centroids)


def test_the_file_is_plain_json_with_format_version_and_model(saved, rec):
    data = json.loads(saved.read_text())
    assert data["format"] == "pipetune-recognition" and data["version"] == 1
    model = data["model"]
    assert model["feature_names"] == list(rec.model.scaler.names)
    assert len(model["centroids"]) == model["k"] == 3
    assert {len(row) for row in model["centroids"]} == {len(model["feature_names"])}
    assert set(model["scaler"]) == {"mean", "std", "ref"}
    assert model["k_rule"].startswith("separation")
    assert len(data["observations"]) == 20 and len(data["history"]) == 1
    assert {k["count"] for k in data["knowledge"]} >= {1, 6}


def test_missing_file_is_an_empty_recognizer_that_says_so(tmp_path):
    path = tmp_path / "none" / "recognition.json"
    rec = load(path, DURATION)
    assert not rec.fitted and rec.observations == []
    r = rec.lookup(observation("lenet5-mnist", np.random.default_rng(0)))
    assert not r.hit and r.reason == f"no model yet at {path}"
    save(rec, path)  # creates the directory
    assert load(path, DURATION).status == f"no model yet at {path}"


def test_save_leaves_no_temp_file_and_replaces_the_old(rec, saved):
    save(rec, saved)
    assert sorted(p.name for p in saved.parent.iterdir()) == ["recognition.json"]


def test_a_crash_mid_write_leaves_the_old_file_intact(rec, saved, monkeypatch):
    before = saved.read_bytes()
    grown = load(saved, DURATION)
    grown.observe(observation("lstm-news20", np.random.default_rng(3)))

    def crash(src, dst):
        raise OSError("disk unplugged")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk unplugged"):
        save(grown, saved)
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["recognition.json"]


def test_other_objective_or_settings_rebuild_from_the_observations(saved):
    energy = load(saved, Objective({"energy": 1.0}))
    assert energy.fitted and {e.objective for _, _, e in energy.knowledge.rows()} == {"energy"}
    assert energy.model.fitted_on == 20 and energy.pending == 0
    k2 = load(saved, DURATION, RecognizerSettings(k=2, refit_every=1000))
    assert k2.model.k == 2 and k2.settings.k == 2


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def unusable(path: Path) -> ModelUnusable:
    with pytest.raises(ModelUnusable) as err:
        load(path, DURATION)
    assert isinstance(err.value, PipeTuneError) and str(path) in str(err.value)
    return err.value


def test_bad_json(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"format": "pipetune-recognition", "version": 1,')
    assert unusable(path).problems[0].startswith("not valid JSON: ")


def test_wrong_format_and_version(saved):
    data = json.loads(saved.read_text())
    err = unusable(write(saved, {**data, "version": 99}))
    assert str(err.problems[0]) == "version: expected 1 (this pipetune's), found 99"
    err = unusable(write(saved, {**data, "format": "joblib"}))
    assert str(err.problems[0]) == "format: expected 'pipetune-recognition', found 'joblib'"
    assert str(unusable(write(saved, [1, 2])).problems[0]).startswith("$: expected a JSON object")


def test_nan_centroid(saved):
    data = json.loads(saved.read_text())
    data["model"]["centroids"][1][4] = float("nan")
    saved.write_text(
        json.dumps(data)
    )  # Python writes NaN, which is not JSON; we parse it to say where
    (problem,) = unusable(saved).problems
    assert str(problem) == "model.centroids[1][4]: expected a finite number, found nan"


def test_wrong_centroid_width_and_other_shapes(saved):
    data = json.loads(saved.read_text())
    width = len(data["model"]["feature_names"])
    data["model"]["centroids"][2] = data["model"]["centroids"][2][:-1]
    data["model"]["thresholds"] = data["model"]["thresholds"][:2]
    data["model"]["scaler"]["std"][0] = 0.0
    problems = [str(p) for p in unusable(write(saved, data)).problems]
    assert problems[0] == "model.scaler.std[0]: expected a finite number > 0, found 0.0"
    assert problems[1].startswith(
        f"model.centroids[2]: expected a list of {width} numbers, found a list of {width - 1}"
    )
    assert problems[2].startswith(
        "model.thresholds: expected a list of 3 numbers, found a list of 2"
    )


def test_missing_keys_and_bad_entries_are_all_reported(saved):
    data = json.loads(saved.read_text())
    del data["settings"]["seed"], data["model"]
    data["knowledge"][0]["cluster"] = 7
    data["observations"][3]["epoch_s"] = -1
    problems = [str(p) for p in unusable(write(saved, data)).problems]
    assert "settings.seed: expected an integer >= 0, found None" in problems
    assert "model: expected a value, found nothing (key missing)" in problems
    assert "observations[3].epoch_s: expected a finite number > 0, found -1" in problems
    assert "knowledge[0].cluster: expected no knowledge without a fitted model, found 7" in problems


def test_the_table_is_rebuilt_from_the_observations_on_load(saved):
    # The table is derived data: an edited entry changes nothing once loaded.
    data = json.loads(saved.read_text())
    original = [dict(e) for e in data["knowledge"]]
    data["knowledge"][0]["setting"] = {"cores": "99"}
    loaded = load(write(saved, data), DURATION)
    rows = [(c, b, e.setting.as_dict()) for c, b, e in loaded.knowledge.rows()]
    assert rows == [(e["cluster"], e["batch_size"], e["setting"]) for e in original]


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_a_pickle_is_rejected_as_not_json_and_never_run(tmp_path, protocol):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Exploit(), protocol=protocol))
    err = unusable(path)
    assert err.problems[0].startswith("not a JSON file" if protocol else "not valid JSON")
    assert not marker.exists()


def test_loaded_recognizer_keeps_learning(saved):
    rec = load(saved, DURATION, RecognizerSettings(refit_every=3))  # other settings: refitted
    assert rec.model.fitted_on == 20 and rec.pending == 0
    rng = np.random.default_rng(5)
    for job in KNOWN:
        rec.observe(observation(job, rng))
    assert rec.model.fitted_on == 23 and rec.pending == 0
    r = rec.lookup(observation("cnn-news20", rng, probed=False))
    assert r.hit and r.setting == BEST["cnn-news20"]
