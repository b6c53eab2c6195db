"""The training engines an app config may name, each validating its own fields
(`ENGINES`: the one place an engine is registered)."""

from __future__ import annotations

from pipetune.engines import bigdl, torch
from pipetune.engines.base import Engine, EngineSettings, EngineSpec

ENGINES: dict[Engine, EngineSpec] = {
    Engine.BIGDL: bigdl.SPEC,
    Engine.TORCH: torch.SPEC,
}

__all__ = ["ENGINES", "Engine", "EngineSettings", "EngineSpec"]
