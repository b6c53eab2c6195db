"""The app config that `pipetune.conf` names in `bigdlConf` (`bigdl/config/*.json`).

The key keeps its original name whatever the engine. The app config names its `engine`
(`bigdl` when absent, or `torch`); this module reads the fields every engine shares, the
engine's own module (pipetune/engines/) its own. Problems are reported with the app file's
name before the JSON path (`app.json: $.master`). Imports only `config_check`, `engines`,
`errors` and `records`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pipetune.config_check import Checker, is_number, show
from pipetune.engines import ENGINES, Engine, EngineSettings
from pipetune.engines.bigdl import SparkSettings
from pipetune.engines.torch import TorchSettings
from pipetune.records import ApplyMode

_COMMON_KEYS = {
    "name",
    "engine",
    "conf",
    "extras",
    "hyperParameterFlags",
    "systemParameterFlags",
    "timeout_s",
    "reuseProcess",
    "liveParameters",
}
S = TypeVar("S", bound=EngineSettings)


@dataclass(frozen=True)
class AppConfig:
    """An application, the engine it trains on and how that engine launches it."""

    path: Path
    name: str
    script: Path
    extras: dict[str, Any]
    hyperparameter_flags: dict[str, str]
    system_parameter_flags: dict[str, str]
    timeout_s: float
    settings: EngineSettings  # the engine's own (engines/bigdl.py, engines/torch.py)
    # app flags (systemParameterFlags names) the app applies in a running job (contract.py)
    live_parameters: tuple[str, ...] = ()
    # run a segment in the process of the one before when both are launched alike (the
    # engine's options and system-parameter flags): the process and its data are kept, the
    # rest is the segment's own (backends/job.py; the app must support it: contract.py)
    reuse_process: bool = True

    @property
    def engine(self) -> Engine:
        return self.settings.engine

    @property
    def spark(self) -> SparkSettings:
        """The BigDL engine's settings (a config error made sure this app has them)."""
        return _settings(self, SparkSettings)

    @property
    def torch(self) -> TorchSettings:
        """The torch engine's settings."""
        return _settings(self, TorchSettings)

    def apply_mode(self, name: str) -> ApplyMode:
        """How a new value of system parameter `name` reaches a running trial: the engine's
        live parameters (`cores`: the processes are re-pinned, the app applies its part) and
        app flags the app declares live, live; the rest at a restart (BigDL's memory: a JVM's
        heap is fixed at its start)."""
        if name in self.settings.live_system_parameters or name in self.live_parameters:
            return ApplyMode.LIVE
        return ApplyMode.RESTART


def _settings(app: AppConfig, kind: type[S]) -> S:
    if not isinstance(app.settings, kind):
        raise TypeError(f"app {app.name!r} runs on {app.engine}, not {kind.engine}")
    return app.settings


def parse_app_reference(
    c: Checker, raw: dict[str, Any], base_dir: Path, snapshot: Any
) -> tuple[AppConfig | None, dict[str, Any]]:
    """The app config `$.bigdlConf` names, and its raw JSON; `snapshot` replaces the file."""
    ref = raw.get("bigdlConf")
    if not isinstance(ref, str) or not ref:
        c.problem("$.bigdlConf", "the path of an app config (a string)", show(ref))
        return None, {}
    app_path = (base_dir / ref).resolve()
    if snapshot is not None:
        return parse_app(c, snapshot, app_path, base_dir), snapshot
    if not app_path.is_file():
        c.problem("$.bigdlConf", "an existing file", f'"{ref}" (no such file: {app_path})')
        return None, {}
    try:
        raw_app = json.loads(app_path.read_text())
    except json.JSONDecodeError as exc:
        c.problem(f"{app_path.name}: $", "valid JSON", f"{exc.msg} at line {exc.lineno}")
        return None, {}
    return parse_app(c, raw_app, app_path, base_dir), raw_app


def parse_app(c: Checker, raw: Any, path: Path, base_dir: Path) -> AppConfig | None:
    """The app config at `path` (already decoded), or None after recording its problems."""
    p = f"{path.name}: $"
    if not isinstance(raw, dict):
        c.problem(p, "a JSON object", show(raw))
        return None
    before = len(c.problems)
    engine = _engine(c, p, raw)
    if engine is None:  # its fields cannot be told from another engine's
        c.unknown_keys(p, raw, _COMMON_KEYS.union(*(s.keys for s in ENGINES.values())))
        settings = None
    else:
        c.unknown_keys(p, raw, _COMMON_KEYS | ENGINES[engine].keys)
        settings = ENGINES[engine].parse(c, p, raw, base_dir)
    script = _script(c, p, raw, base_dir)
    extras = c.mapping(f"{p}.extras", raw.get("extras", {}))
    hp_flags = c.flag_map(f"{p}.hyperParameterFlags", raw.get("hyperParameterFlags", {}))
    sp_flags = c.flag_map(f"{p}.systemParameterFlags", raw.get("systemParameterFlags", {}))
    timeout = raw.get("timeout_s", 1800)
    if not is_number(timeout) or timeout <= 0:
        c.problem(f"{p}.timeout_s", "a positive number of seconds", show(timeout))
    reuse = c.boolean(f"{p}.reuseProcess", raw.get("reuseProcess", True), True)
    live = _live_parameters(c, p, raw.get("liveParameters", []), sp_flags)
    if len(c.problems) > before or settings is None:
        return None
    return AppConfig(
        path=path,
        name=str(raw.get("name") or path.stem),
        script=script,
        extras=extras,
        hyperparameter_flags=hp_flags,
        system_parameter_flags=sp_flags,
        timeout_s=float(timeout),
        settings=settings,
        live_parameters=live,
        reuse_process=reuse,
    )


def _engine(c: Checker, p: str, raw: dict[str, Any]) -> Engine | None:
    """The engine the app config names (`bigdl` when it names none)."""
    before = len(c.problems)
    engine = c.choice(f"{p}.engine", raw.get("engine", Engine.BIGDL.value), Engine)
    return engine if len(c.problems) == before else None


def _script(c: Checker, p: str, raw: dict[str, Any], base_dir: Path) -> Path:
    script_name = c.string(f"{p}.conf", raw.get("conf"))
    script = (base_dir / script_name).resolve() if script_name else base_dir
    if script_name and not script.is_file():
        c.problem(f"{p}.conf", "the path of the app script", f'"{script_name}" (no such file)')
    return script


def _live_parameters(c: Checker, p: str, live: Any, sp_flags: dict[str, str]) -> tuple[str, ...]:
    if not isinstance(live, list) or not all(isinstance(n, str) and n in sp_flags for n in live):
        c.problem(
            f"{p}.liveParameters",
            "a list of names mapped in systemParameterFlags that the app applies live",
            show(live),
        )
        return ()
    return tuple(live)
