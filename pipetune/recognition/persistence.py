"""The recognizer as one JSON file, written atomically and validated on load.

The content is `model_file.to_data` (plain data, its format and version named, with the raw
observations the model can be refitted from), read back by `model_file_read.from_data`.

`load` parses JSON only; nothing in the file is ever executed. A missing file is an empty
recognizer ("no model yet at PATH"); anything else wrong raises `ModelUnusable` listing every
problem, so the caller can fall back to probing and say why.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pipetune.probing.objective import Objective
from pipetune.recognition import model as md
from pipetune.recognition.model_file import ModelUnusable, to_data
from pipetune.recognition.model_file_read import from_data

# What callers of the file use, besides `load` and `save`.
__all__ = ["ModelUnusable", "from_data", "load", "save", "to_data"]


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
