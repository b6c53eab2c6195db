"""The recognizer as one JSON file: plain data, validated on load, written atomically.

Layout (`"format": "pipetune-recognition"`, `"version": 1`): `settings`, `objective`, `status`,
`pending`, `model` (null while unfitted, else feature names, scaler mean/std, k and how it was
chosen, centroids k × d, thresholds, sizes), `knowledge` and its replaced `history`, and the raw
`observations` the model can be refitted from. Numbers are JSON numbers; NaN is never written.

`load` parses JSON only; nothing in the file is ever executed. A missing file is an empty
recognizer ("no model yet at PATH"); anything else wrong raises `ModelUnusable` listing every
problem, so the caller can fall back to probing and say why.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipetune.errors import PipeTuneError, Problem
from pipetune.probing.objective import OBJECTIVE_METRICS, Objective
from pipetune.probing.selection import ProbeResult
from pipetune.recognition import knowledge as kn
from pipetune.recognition import model as md
from pipetune.recognition.features import FeatureSpec, Observation, Scaler
from pipetune.records import SystemSetting
from pipetune.telemetry.profile import JobProfile, ProfileError

FORMAT = "pipetune-recognition"
VERSION = 1


class ModelUnusable(PipeTuneError):
    """A stored recognition model cannot be used; `problems` says exactly why."""

    def __init__(self, path: Path | str, problems: list[Problem] | str) -> None:
        self.path = str(path)
        self.problems: list[Problem | str] = (
            [problems] if isinstance(problems, str) else list(problems)
        )
        lines = [f"recognition model {self.path} is unusable:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------------------------- save


def save(rec: md.Recognizer, path: Path | str) -> None:
    """Write `rec` to `path` atomically: temp file in the same directory, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_data(rec), indent=1, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable, where dirs can be opened
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def to_data(rec: md.Recognizer) -> dict[str, Any]:
    """`rec` as JSON-safe plain data (the file's content)."""
    model = rec.model
    return {
        "format": FORMAT,
        "version": VERSION,
        "settings": rec.settings.to_dict(),
        "objective": {"weights": dict(rec.objective.weights)},
        "status": rec.status,
        "pending": rec.pending,
        "model": None if model is None else _model_data(model),
        "knowledge": [_entry_data(e, c, b) for c, b, e in rec.knowledge.rows()],
        "history": [_replaced_data(r) for r in rec.knowledge.history],
        "observations": [_observation_data(o) for o in rec.observations],
    }


def _model_data(m: md.ClusterModel) -> dict[str, Any]:
    return {
        "feature_names": list(m.scaler.names),
        "scaler": {
            "mean": list(m.scaler.mean),
            "std": list(m.scaler.std),
            "ref": list(m.scaler.ref),
        },
        "k": m.k,
        "k_rule": m.k_rule,
        "silhouette": {str(k): v for k, v in m.silhouettes.items()},
        "centroids": [[float(x) for x in row] for row in m.centroids],
        "thresholds": [float(t) for t in m.thresholds],
        "sizes": list(m.sizes),
        "fitted_on": m.fitted_on,
        "threshold_rule": md.threshold_rule(),
    }


def _entry_data(e: kn.KnowledgeEntry, cluster: int, batch: int) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "batch_size": batch,
        "setting": e.setting.as_dict(),
        "epoch_s": e.epoch_s,
        "energy_j": e.energy_j,
        "energy_source": e.energy_source,
        "objective": e.objective,
        "count": e.count,
        "observation": e.observation,
        "job": e.job,
    }


def _replaced_data(r: kn.Replaced) -> dict[str, Any]:
    return {
        **_entry_data(r.entry, r.cluster, r.batch_size),
        "by": r.by.as_dict(),
        "replaced_by_observation": r.observation,
    }


def _observation_data(o: Observation) -> dict[str, Any]:
    return {
        "job": o.job,
        "batch_size": o.batch_size,
        "epoch_s": o.epoch_s,
        "samples": o.samples,
        "energy_j": o.energy_j,
        "energy_source": o.energy_source,
        "profile": o.profile.to_dict(),
        "probes": [
            {
                "setting": p.setting.as_dict(),
                "epoch_s": p.epoch_s,
                "energy_j": p.energy_j,
                "energy_source": p.energy_source,
                "error": p.error,
            }
            for p in o.probes
        ],
    }


# ---------------------------------------------------------------------------------- load


def load(
    path: Path | str, objective: Objective, settings: md.RecognizerSettings | None = None
) -> md.Recognizer:
    """The recognizer stored at `path`, or an empty one if there is no file yet.

    A stored model made for another objective or other settings is refitted from its stored
    observations under the caller's (`settings=None` keeps the stored settings).

    Raises:
        ModelUnusable: the file is unreadable, not JSON, of another format or version, or
            malformed (missing keys, wrong shapes, NaN, ...).
    """
    path = Path(path)
    if not path.exists():
        return md.Recognizer(objective, settings, status=f"no model yet at {path}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelUnusable(path, f"cannot read it: {exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        found = f"byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        raise ModelUnusable(
            path, f"not a JSON file: not UTF-8 text ({found}; a pickle or other binary?)"
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelUnusable(path, f"not valid JSON: {exc}") from exc
    rec = from_data(data, path)
    settings = settings or rec.settings
    if (
        dict(rec.objective.weights) != dict(objective.weights)
        or settings != rec.settings
        or _stale_features(rec)
        or _without_refs(data)
    ):
        rec = rec.rebuilt(objective, settings)
    else:
        rec.rebuild_knowledge()
    return rec


def _without_refs(data: dict[str, Any]) -> bool:
    model = data.get("model")
    return isinstance(model, dict) and "ref" not in (model.get("scaler") or {})


def _stale_features(rec: md.Recognizer) -> bool:
    """The model was fitted on features this version no longer derives (e.g. a duplicate
    counter dropped since): refit it from the stored observations rather than refuse it."""
    if rec.model is None or not rec.observations:
        return False
    derived = {tuple(rec.settings.features.raw(o)) for o in rec.observations}
    return rec.model.scaler.names not in derived


def from_data(data: Any, path: Path | str = "<data>") -> md.Recognizer:
    """Inverse of `to_data`, validating every field.

    Raises:
        ModelUnusable: with every problem found.
    """
    r = _Reader()
    if not isinstance(data, dict):
        raise ModelUnusable(path, [Problem("$", "a JSON object", _show(data))])
    if data.get("format") != FORMAT:
        raise ModelUnusable(path, [Problem("format", repr(FORMAT), _show(data.get("format")))])
    if data.get("version") != VERSION:
        found = _show(data.get("version"))
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


def _read_settings(r: _Reader, d: dict[str, Any] | None) -> md.RecognizerSettings | None:
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


def _read_objective(r: _Reader, d: dict[str, Any] | None) -> Objective | None:
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


def _read_model(r: _Reader, d: Any) -> md.ClusterModel | None:
    if not isinstance(d, dict):
        r.bad("model", "null or an object", _show(d))
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
    return md.ClusterModel(
        Scaler(tuple(names), tuple(mean or ()), tuple(std or ()), tuple(ref or ())),
        np.asarray(centroids, dtype=float),
        np.asarray(thresholds, dtype=float),
        tuple(int(s or 0) for s in sizes),
        rule,
        silhouettes,
        int(fitted_on or 0),
    )


def _read_entry(
    r: _Reader,
    d: Any,
    where: str,
    k: int | None,
    n_obs: int,
) -> kn.KnowledgeEntry | None:
    if not isinstance(d, dict):
        r.bad(where, "an object", _show(d))
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


def _read_setting(r: _Reader, d: Any, where: str) -> SystemSetting | None:
    if not isinstance(d, dict) or not all(isinstance(v, str) for v in d.values()) or not d:
        r.bad(where, "an object of parameter → string value", _show(d))
        return None
    return SystemSetting.of(d)


def _read_observation(r: _Reader, d: Any, where: str) -> Observation | None:
    if not isinstance(d, dict):
        r.bad(where, "an object", _show(d))
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
        r.bad(f"{where}.profile", "an object", _show(d.get("profile")))
    probes = []
    for i, p in enumerate(r.key(d, "probes", list, f"{where}.probes") or []):
        probe = _read_probe(r, p, f"{where}.probes[{i}]")
        if probe is not None:
            probes.append(probe)
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
    )


def _read_probe(r: _Reader, d: Any, where: str) -> ProbeResult | None:
    if not isinstance(d, dict):
        r.bad(where, "an object", _show(d))
        return None
    setting = _read_setting(r, d.get("setting"), f"{where}.setting")
    values = {}
    for name in ("epoch_s", "energy_j"):
        v = d.get(name)
        values[name] = None if v is None else r.number(v, f"{where}.{name}")
    source = r.key(d, "energy_source", str, f"{where}.energy_source")
    error = d.get("error")
    if error is not None and not isinstance(error, str):
        r.bad(f"{where}.error", "null or a string", _show(error))
    if setting is None or source is None:
        return None
    return ProbeResult(setting, values["epoch_s"], values["energy_j"], source, error)


# ---------------------------------------------------------------------------------- checks


class _Reader:
    """Typed access to untrusted JSON that records a `Problem` per bad field and goes on."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def bad(self, path: str, expected: str, found: str) -> None:
        self.problems.append(Problem(path, expected, found))

    def missing(self, path: str) -> None:
        self.bad(path, "a value", "nothing (key missing)")

    def key(self, d: Mapping[str, Any], name: str, kind: type, path: str) -> Any:
        if name not in d:
            self.missing(path)
            return None
        value = d[name]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            self.bad(path, _KINDS.get(kind, kind.__name__), _show(value))
            return None
        return value

    def number(self, v: Any, path: str, positive: bool = False) -> float | None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.bad(path, "a number", _show(v))
            return None
        if not math.isfinite(v) or (positive and v <= 0):
            self.bad(path, "a finite number > 0" if positive else "a finite number", _show(v))
            return None
        return float(v)

    def count(self, v: Any, path: str, minimum: int = 0) -> int | None:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            self.bad(path, f"an integer >= {minimum}", _show(v))
            return None
        return v

    def index(self, v: Any, path: str, n: int) -> int | None:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < max(n, 1):
            self.bad(path, f"an observation index in [0, {n})", _show(v))
            return None
        return v

    def strings(self, v: Any, path: str) -> list[str] | None:
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            self.bad(path, "a list of strings", _show(v))
            return None
        return v

    def sized(self, d: Mapping[str, Any], name: str, length: int | None) -> list[Any]:
        v = d.get(name)
        if not isinstance(v, list) or (length is not None and len(v) != length):
            self.bad(f"model.{name}", _length(length, "values"), _show(v))
            return []
        return v

    def vector(
        self, v: Any, path: str, length: int | None, positive: bool = False
    ) -> list[float] | None:
        if not isinstance(v, list) or (length is not None and len(v) != length):
            self.bad(path, _length(length, "numbers"), _show(v))
            return None
        out = [self.number(x, f"{path}[{i}]", positive) for i, x in enumerate(v)]
        return None if None in out else [float(x or 0.0) for x in out]

    def matrix(
        self, v: Any, path: str, rows: int | None, cols: int | None
    ) -> list[list[float]] | None:
        if not isinstance(v, list) or (rows is not None and len(v) != rows):
            self.bad(path, _length(rows, "rows (one per cluster)"), _show(v))
            return None
        out = [self.vector(row, f"{path}[{i}]", cols) for i, row in enumerate(v)]
        if cols is None and len({len(row) for row in out if row is not None}) > 1:
            self.bad(path, "rows of one width", "rows of different widths")
        return None if any(row is None for row in out) else out  # type: ignore[return-value]


_KINDS: dict[type, str] = {dict: "an object", list: "a list", str: "a string", bool: "true/false"}


def _length(n: int | None, what: str) -> str:
    return f"a list of {n} {what}" if n is not None else f"a list of {what}"


def _show(value: Any, limit: int = 60) -> str:
    if isinstance(value, list):
        text = f"a list of {len(value)}: {json.dumps(value, default=str)}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
