"""A BigDL app's checkpoint directory: model, SGD state, momentum and meta.json, swapped in whole.

`DIR` holds `model.bigdl` (BigDL `saveModel`), `optim_method.bigdl` (BigDL `OptimMethod.save`:
the SGD with its state table), `momentum.npy` (the SGD momentum buffer, absent when momentum
is 0; see momentum.py) and `meta.json` (written last). A reader sees a whole checkpoint or
the one before: everything goes to `DIR.tmp`, then `DIR` becomes `DIR.old`, `DIR.tmp` becomes
`DIR`, and `DIR.old` goes. A later run removes a stale `DIR.tmp` and brings back `DIR.old`
when a crash came between the two renames.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from bigdl_app.errors import AppError
from pipetune import contract

CHECKPOINT_FORMAT = 1
MODEL_FILE = "model.bigdl"
OPTIM_FILE = "optim_method.bigdl"
MOMENTUM_FILE = "momentum.npy"


def _tmp_dir(ckpt: Path) -> Path:
    return ckpt.with_name(ckpt.name + ".tmp")


def _old_dir(ckpt: Path) -> Path:
    return ckpt.with_name(ckpt.name + ".old")


def read_checkpoint(
    ckpt: Path, hp: dict[str, Any], data_identity: dict[str, Any]
) -> dict[str, Any] | None:
    """meta.json of an existing checkpoint (None if fresh); AppError if it is not this trial's:
    other hyperparameters, or other data (`data_identity`: what the data is made from)."""
    old = _old_dir(ckpt)
    if not ckpt.exists() and old.is_dir():
        # A previous run died between its two renames: the old checkpoint is complete.
        old.rename(ckpt)
    if _tmp_dir(ckpt).exists():
        shutil.rmtree(_tmp_dir(ckpt))  # half-written by a crashed run; never valid
    if not ckpt.exists():
        return None
    if not ckpt.is_dir():
        raise AppError(f"checkpoint {ckpt} exists and is not a directory")
    meta_path = ckpt / contract.META_FILE
    if not meta_path.exists():
        if any(ckpt.iterdir()):
            raise AppError(
                f"checkpoint {ckpt} is not empty but has no {contract.META_FILE}; "
                "refusing to use it"
            )
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise AppError(f"checkpoint {ckpt}: unreadable {contract.META_FILE}: {exc}") from exc
    _check_belongs(ckpt, meta, hp, data_identity)
    return meta


def _check_belongs(
    ckpt: Path, meta: dict[str, Any], hp: dict[str, Any], data_identity: dict[str, Any]
) -> None:
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise AppError(
            f"checkpoint {ckpt}: format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT}"
        )
    if meta.get("hyperparameters") != hp:
        raise AppError(
            f"checkpoint {ckpt} belongs to a trial with hyperparameters "
            f"{json.dumps(meta.get('hyperparameters'))}, not {json.dumps(hp)}"
        )
    if meta.get("data") is not None and meta["data"] != data_identity:
        raise AppError(
            f"checkpoint {ckpt} was trained on data {json.dumps(meta['data'])}, "
            f"not {json.dumps(data_identity)}"
        )
    for name in (MODEL_FILE, OPTIM_FILE):
        if not (ckpt / name).exists():
            raise AppError(f"checkpoint {ckpt} lacks {name}")


def write_checkpoint(
    ckpt: Path, model: Any, optim_method: Any, momentum: np.ndarray | None, meta: dict[str, Any]
) -> None:
    """Write into DIR.tmp, then swap it in with renames; meta.json is written last."""
    from bigdl.dllib.utils.common import callBigDlFunc

    tmp, old = _tmp_dir(ckpt), _old_dir(ckpt)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.saveModel(str(tmp / MODEL_FILE), over_write=True)
    # OptimMethod.save keeps the state table (epoch, neval, evalCounter = the learning-rate
    # schedule step) but drops the momentum buffer; that one goes to momentum.npy.
    callBigDlFunc("float", "saveOptimMethod", optim_method, str(tmp / OPTIM_FILE), True)
    if momentum is not None:
        np.save(tmp / MOMENTUM_FILE, momentum)
    contract.write_meta(tmp, meta)
    if old.exists():
        shutil.rmtree(old)
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(ckpt: Path) -> tuple[Any, Any, np.ndarray | None]:
    """The model, the driver's SGD (with its state table) and the momentum buffer saved in
    `ckpt` (None when there is none)."""
    from bigdl.dllib.nn.layer import Model
    from bigdl.dllib.utils.common import callBigDlFunc

    model = Model.loadModel(str(ckpt / MODEL_FILE))
    optim_method = callBigDlFunc("float", "loadOptimMethod", str(ckpt / OPTIM_FILE))
    momentum = np.load(ckpt / MOMENTUM_FILE) if (ckpt / MOMENTUM_FILE).exists() else None
    return model, optim_method, momentum


def optim_state(optim_method: Any) -> dict[str, Any]:
    """The SGD state table's counters: epoch, iterations (`neval`), learning-rate step."""
    state = optim_method.state()
    out = {}
    for key in ("epoch", "neval", "evalCounter"):
        value = state.get(key)
        out[key] = int(value.get()) if value.isDefined() else None
    return out
