"""The trial's checkpoint directory: model weights, optimizer state (SGD momentum buffers) and
meta.json (pipetune/contract.py, "Checkpoint").

DIR is written as DIR.tmp (meta.json last), then swapped in with two renames through DIR.old,
so a reader sees the whole new checkpoint or the whole old one; a later run repairs what a
crash between the renames left. The layout is the BigDL app's, with torch's files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipetune import contract

FORMAT = 1
ENGINE = "torch"
MODEL_FILE = "model.pt"
OPTIMIZER_FILE = "optimizer.pt"


class CheckpointError(Exception):
    """A checkpoint this trial cannot resume from (not ours, or damaged)."""


def _tmp_dir(ckpt: Path) -> Path:
    return ckpt.with_name(ckpt.name + ".tmp")


def _old_dir(ckpt: Path) -> Path:
    return ckpt.with_name(ckpt.name + ".old")


def read_meta(ckpt: Path, hyperparameters: dict[str, Any], data: dict[str, Any]) -> dict | None:
    """meta.json of the trial's checkpoint, None for a fresh start; CheckpointError when DIR
    holds a checkpoint of other hyperparameters, other data or another engine."""
    if not ckpt.exists() and _old_dir(ckpt).is_dir():
        _old_dir(ckpt).rename(ckpt)  # a run died between its two renames: the old one is whole
    if _tmp_dir(ckpt).exists():
        shutil.rmtree(_tmp_dir(ckpt))  # half-written by a crashed run; never valid
    if not ckpt.exists():
        return None
    if not ckpt.is_dir():
        raise CheckpointError(f"checkpoint {ckpt} exists and is not a directory")
    meta = contract.read_meta(ckpt)
    if meta is None:
        if any(ckpt.iterdir()):
            raise CheckpointError(
                f"checkpoint {ckpt} is not empty but has no readable {contract.META_FILE}; "
                "refusing to use it"
            )
        return None
    problems = []
    if meta.get("engine") != ENGINE or meta.get("format") != FORMAT:
        problems.append(
            f"engine {meta.get('engine')!r} format {meta.get('format')!r}, "
            f"expected {ENGINE!r} format {FORMAT}"
        )
    if meta.get("hyperparameters") != hyperparameters:
        problems.append(
            f"hyperparameters {json.dumps(meta.get('hyperparameters'))}, "
            f"not {json.dumps(hyperparameters)}"
        )
    if meta.get("data") != data:
        problems.append(f"data {json.dumps(meta.get('data'))}, not {json.dumps(data)}")
    problems += [
        f"no {name}" for name in (MODEL_FILE, OPTIMIZER_FILE) if not (ckpt / name).exists()
    ]
    if problems:
        raise CheckpointError(f"checkpoint {ckpt} belongs to another trial: {'; '.join(problems)}")
    return meta


def load_states(ckpt: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's and the optimizer's state dicts (tensors only: weights_only loading)."""
    try:
        model_state = torch.load(ckpt / MODEL_FILE, weights_only=True)
        optimizer_state = torch.load(ckpt / OPTIMIZER_FILE, weights_only=True)
    except Exception as exc:  # a damaged file: torch raises several kinds
        raise CheckpointError(f"checkpoint {ckpt}: cannot load its state: {exc}") from exc
    return model_state, optimizer_state


def write(
    ckpt: Path, model: nn.Module, optimizer: torch.optim.Optimizer, meta: dict[str, Any]
) -> None:
    """Write the checkpoint beside DIR, then swap it in; meta.json goes last."""
    tmp, old = _tmp_dir(ckpt), _old_dir(ckpt)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    torch.save(model.state_dict(), tmp / MODEL_FILE)
    torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
    contract.write_meta(tmp, {"engine": ENGINE, "format": FORMAT, **meta})
    if old.exists():
        shutil.rmtree(old)
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)
