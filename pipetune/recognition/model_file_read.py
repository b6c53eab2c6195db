"""A recognizer from the file's content (`from_data`), every field validated: every problem is
reported at once, with its JSON path, in one `ModelUnusable`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipetune.errors import Problem
from pipetune.probing.objective import OBJECTIVE_METRICS, Objective
from pipetune.probing.selection import ProbeResult
from pipetune.recognition import knowledge as kn
from pipetune.recognition import model as md
from pipetune.recognition.clusters import ClusterModel
from pipetune.recognition.features import FeatureSpec, Observation, Scaler
from pipetune.recognition.json_reader import JsonReader, show
from pipetune.recognition.model_file import FORMAT, VERSION, ModelUnusable
from pipetune.recognition.noise import prior_noise
from pipetune.records import SystemSetting
from pipetune.telemetry.profile import JobProfile, ProfileError


def from_data(data: Any, path: Path | str = "<data>") -> md.Recognizer:
    """Inverse of `to_data`, validating every field.

    Raises:
        ModelUnusable: with every problem found.
    """
    r = JsonReader()
    if not isinstance(data, dict):
        raise ModelUnusable(path, [Problem("$", "a JSON object", show(data))])
    if data.get("format") != FORMAT:
        raise ModelUnusable(path, [Problem("format", repr(FORMAT), show(data.get("format")))])
    if data.get("version") != VERSION:
        found = show(data.get("version"))
        raise ModelUnusable(path, [Problem("version", f"{VERSION} (this pipetune's)", found)])
    settings = _read_settings(r, r.key(data, "settings", dict, "settings"))
    objective = _read_objective(r, r.key(data, "objective", dict, "objective"))
    status = r.key(data, "status", str, "status")
    pending = r.count(data.get("pending"), "pending")
    observations = [
        _read_observation(r, o, f"observations[{i}]")
        for i, o in enumerate(r.key(data, "observations", list, "observations") or [])
    ]
    if "model" not in data:
        r.missing("model")
    model = None if data.get("model") is None else _read_model(r, data["model"])
    # Cluster ids are checked against k; against nothing if the model itself was bad.
    k = model.k if model is not None else (None if data.get("model") is not None else 0)
    n_obs = len(observations)
    # The table is derived data (rebuilt from the observations on load); it is checked so that
    # a damaged file is reported, and kept for `clustering show` only until then.
    cells: dict[tuple[int, int], list[kn.KnowledgeEntry]] = {}
    for i, e in enumerate(r.key(data, "knowledge", list, "knowledge") or []):
        entry = _read_entry(r, e, f"knowledge[{i}]", k, n_obs)
        if entry is not None:
            cells.setdefault((e["cluster"], e["batch_size"]), []).append(entry)
    history = []
    for i, h in enumerate(r.key(data, "history", list, "history") or []):
        where = f"history[{i}]"
        entry = _read_entry(r, h, where, None, n_obs)
        by = _read_setting(r, h.get("by") if isinstance(h, dict) else None, f"{where}.by")
        after = h.get("replaced_by_observation") if isinstance(h, dict) else None
        index = r.index(after, f"{where}.replaced_by_observation", n_obs)
        if entry is not None and by is not None and index is not None:
            history.append(kn.Replaced(h["cluster"], h["batch_size"], entry, by, index))
    if r.problems or settings is None or objective is None or status is None:
        raise ModelUnusable(path, r.problems or "incomplete settings, objective or status")
    rec = md.Recognizer(objective, settings, status)
    rec.observations = [o for o in observations if o is not None]
    rec.model = model
    rec.pending = int(pending or 0)
    rec.knowledge = kn.KnowledgeTable(cells, history)
    return rec


def _read_settings(r: JsonReader, d: dict[str, Any] | None) -> md.RecognizerSettings | None:
    if d is None:
        return None
    k = d.get("k")
    if k is not None:
        k = r.count(k, "settings.k", minimum=1)
    refit = r.count(d.get("refit_every"), "settings.refit_every", minimum=1)
    min_obs = r.count(d.get("min_observations"), "settings.min_observations", minimum=2)
    seed = r.count(d.get("seed"), "settings.seed")
    nearest = r.key(d, "nearest_batch", bool, "settings.nearest_batch")
    f = r.key(d, "features", dict, "settings.features") or {}
    exclude = r.strings(f.get("exclude"), "settings.features.exclude")
    flags = {n: r.key(f, n, bool, f"settings.features.{n}") for n in _FLAGS}
    if None in (refit, min_obs, seed, nearest, exclude) or None in flags.values():
        return None
    spec = FeatureSpec(frozenset(exclude or ()), **{n: bool(v) for n, v in flags.items()})
    return md.RecognizerSettings(
        k, int(refit or 1), int(min_obs or 2), int(seed or 0), bool(nearest), spec
    )


_FLAGS = ("batch_size", "power", "time_per_sample")


def _read_objective(r: JsonReader, d: dict[str, Any] | None) -> Objective | None:
    weights = r.key(d or {}, "weights", dict, "objective.weights") if d is not None else None
    if weights is None:
        return None
    ok = bool(weights)
    if not weights:
        r.bad("objective.weights", "at least one metric", "{}")
    for metric, w in weights.items():
        if metric not in OBJECTIVE_METRICS:
            r.bad(f"objective.weights.{metric}", f"one of {', '.join(OBJECTIVE_METRICS)}", metric)
            ok = False
        elif r.number(w, f"objective.weights.{metric}") is None:
            ok = False
    return Objective({m: float(w) for m, w in weights.items()}) if ok and weights else None


def _read_model(r: JsonReader, d: Any) -> ClusterModel | None:
    if not isinstance(d, dict):
        r.bad("model", "null or an object", show(d))
        return None
    n_problems = len(r.problems)
    names = r.strings(d.get("feature_names"), "model.feature_names")
    if names is not None and len(set(names)) != len(names):
        r.bad("model.feature_names", "unique names", "duplicates")
    width = len(names) if names is not None else None
    scaler = r.key(d, "scaler", dict, "model.scaler") or {}
    mean = r.vector(scaler.get("mean"), "model.scaler.mean", width)
    std = r.vector(scaler.get("std"), "model.scaler.std", width, positive=True)
    # Models saved before per-feature refs existed scaled with ref 1: read them as such; `load`
    # refits them (their centroids were computed on that scale).
    ref = None
    if "ref" in scaler:
        ref = r.vector(scaler.get("ref"), "model.scaler.ref", width, positive=True)
    k = r.count(d.get("k"), "model.k", minimum=1)
    rule = r.key(d, "k_rule", str, "model.k_rule")
    centroids = r.matrix(d.get("centroids"), "model.centroids", k, width)
    thresholds = r.vector(d.get("thresholds"), "model.thresholds", k, positive=True)
    noise = r.number(d["noise"], "model.noise") if "noise" in d else None
    if noise is not None and noise < 0:
        r.bad("model.noise", "a finite number >= 0", show(noise))
    weights = None
    if d.get("weights") is not None:
        weights = r.vector(d["weights"], "model.weights", width, positive=True)
    sizes = [r.count(s, f"model.sizes[{i}]") for i, s in enumerate(r.sized(d, "sizes", k))]
    fitted_on = r.count(d.get("fitted_on"), "model.fitted_on")
    sil = r.key(d, "silhouette", dict, "model.silhouette") or {}
    silhouettes = {}
    for key, value in sil.items():
        v = r.number(value, f"model.silhouette.{key}")
        if not key.isdigit():
            r.bad(f"model.silhouette.{key}", "a k as key", repr(key))
        elif v is not None:
            silhouettes[int(key)] = v
    if len(r.problems) > n_problems or names is None or rule is None:
        return None
    scaler = Scaler(tuple(names), tuple(mean or ()), tuple(std or ()), tuple(ref or ()))
    return ClusterModel(
        scaler,
        np.asarray(centroids, dtype=float),
        np.asarray(thresholds, dtype=float),
        tuple(int(s or 0) for s in sizes),
        rule,
        prior_noise(scaler) if noise is None else noise,  # saved before noise was learnt
        silhouettes,
        int(fitted_on or 0),
        None if weights is None else np.asarray(weights, dtype=float),
    )


def _read_entry(
    r: JsonReader,
    d: Any,
    where: str,
    k: int | None,
    n_obs: int,
) -> kn.KnowledgeEntry | None:
    if not isinstance(d, dict):
        r.bad(where, "an object", show(d))
        return None
    n_problems = len(r.problems)
    cluster = r.count(d.get("cluster"), f"{where}.cluster")
    if cluster is not None and k is not None and cluster >= k:
        expected = f"a cluster id < k = {k}" if k else "no knowledge without a fitted model"
        r.bad(f"{where}.cluster", expected, str(cluster))
    r.count(d.get("batch_size"), f"{where}.batch_size", minimum=1)
    setting = _read_setting(r, d.get("setting"), f"{where}.setting")
    epoch_s = r.number(d.get("epoch_s"), f"{where}.epoch_s")
    energy = d.get("energy_j")
    if energy is not None:
        energy = r.number(energy, f"{where}.energy_j")
    source = r.key(d, "energy_source", str, f"{where}.energy_source")
    objective = r.key(d, "objective", str, f"{where}.objective")
    count = r.count(d.get("count"), f"{where}.count", minimum=1)
    index = r.index(d.get("observation"), f"{where}.observation", n_obs)
    job = r.key(d, "job", str, f"{where}.job")
    if len(r.problems) > n_problems or setting is None:
        return None
    return kn.KnowledgeEntry(
        setting,
        float(epoch_s or 0.0),
        energy,
        str(source),
        str(objective),
        int(count or 1),
        int(index or 0),
        str(job),
    )


def _read_setting(r: JsonReader, d: Any, where: str) -> SystemSetting | None:
    if not isinstance(d, dict) or not all(isinstance(v, str) for v in d.values()) or not d:
        r.bad(where, "an object of parameter → string value", show(d))
        return None
    return SystemSetting.of(d)


def _read_observation(r: JsonReader, d: Any, where: str) -> Observation | None:
    if not isinstance(d, dict):
        r.bad(where, "an object", show(d))
        return None
    n_problems = len(r.problems)
    job = r.key(d, "job", str, f"{where}.job")
    batch = r.count(d.get("batch_size"), f"{where}.batch_size", minimum=1)
    epoch_s = r.number(d.get("epoch_s"), f"{where}.epoch_s", positive=True)
    samples = r.count(d.get("samples"), f"{where}.samples", minimum=1)
    energy = d.get("energy_j")
    if energy is not None:
        energy = r.number(energy, f"{where}.energy_j")
    source = r.key(d, "energy_source", str, f"{where}.energy_source")
    profile = None
    if isinstance(d.get("profile"), dict):
        try:
            profile = JobProfile.from_dict(d["profile"])
        except ProfileError as exc:
            r.bad(f"{where}.profile", "a JobProfile", str(exc).replace("\n", " "))
    else:
        r.bad(f"{where}.profile", "an object", show(d.get("profile")))
    probes = []
    for i, p in enumerate(r.key(d, "probes", list, f"{where}.probes") or []):
        probe = _read_probe(r, p, f"{where}.probes[{i}]")
        if probe is not None:
            probes.append(probe)
    chosen = d.get("chosen")  # absent in files written before it was kept
    chosen_setting = _read_setting(r, chosen, f"{where}.chosen") if chosen is not None else None
    if len(r.problems) > n_problems or profile is None:
        return None
    return Observation(
        profile,
        int(batch or 1),
        float(epoch_s or 1.0),
        int(samples or 1),
        energy,
        str(source),
        tuple(probes),
        str(job),
        chosen_setting,
    )


def _read_probe(r: JsonReader, d: Any, where: str) -> ProbeResult | None:
    if not isinstance(d, dict):
        r.bad(where, "an object", show(d))
        return None
    setting = _read_setting(r, d.get("setting"), f"{where}.setting")
    values = {}
    for name in ("epoch_s", "energy_j"):
        v = d.get(name)
        values[name] = None if v is None else r.number(v, f"{where}.{name}")
    source = r.key(d, "energy_source", str, f"{where}.energy_source")
    error = d.get("error")
    if error is not None and not isinstance(error, str):
        r.bad(f"{where}.error", "null or a string", show(error))
    if setting is None or source is None:
        return None
    return ProbeResult(setting, values["epoch_s"], values["energy_j"], source, error)
