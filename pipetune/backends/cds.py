"""A JVM class-data-sharing (AppCDS) archive of the driver's class path: faster start-ups.

A segment's driver JVM (spark-submit's, in client and local mode) loads and verifies the
same ~10,000 classes of Spark and BigDL every time. Java 13+ can dump the classes a run loaded
into an archive at its exit (`-XX:ArchiveClassesAtExit`) and map them from it at the next
start (`-XX:SharedArchiveFile`). Measured here (bench/startup.py): a fresh segment's start-up
8.9 s → 7.2 s, median of 4 interleaved runs each.

The archive is made as a side effect of the first real segment that finds none (writing
~115 MB at its exit made that segment's teardown 7.7 s instead of ~1 s here), into a file
of its own, and moved into place only when that process ended well; it is keyed by the Java
runtime, Spark and the jars, so another class path never maps it (a JVM that finds an archive
it cannot use ignores it and says so in the log: `-Xshare:auto`). Cache:
`$XDG_CACHE_HOME/pipetune/cds` (default `~/.cache/pipetune/cds`).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

from pipetune.spark_env import SparkEnvironment

MIN_JAVA = 13  # -XX:ArchiveClassesAtExit (dynamic archives)


def java_major(java_home: Path) -> int | None:
    """The Java runtime's major version from its `release` file (None: not known)."""
    try:
        text = (java_home / "release").read_text()
    except OSError:
        return None
    found = re.search(r'^JAVA_VERSION="(?:1\.)?(\d+)', text, re.MULTILINE)
    return int(found.group(1)) if found else None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pipetune" / "cds"


class ClassDataSharing:
    """The archive for one Spark environment: use it, or make it during this launch."""

    def __init__(self, env: SparkEnvironment, directory: Path | None = None) -> None:
        major = java_major(env.java_home)
        self.usable = major is not None and major >= MIN_JAVA
        self.java = env.java_home / "bin" / "java"
        self._dumps: bool | None = None  # whether this JVM can dump an archive (probed once)
        parts = [str(env.java_home), str(major), str(env.spark_home), *map(str, env.jars)]
        key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
        self.archive = (directory or cache_dir()) / f"driver-{key}.jsa"

    def launch(self) -> tuple[str, Path | None]:
        """The JVM option for this launch, and the file it will dump to (None: it maps the
        archive, or nothing)."""
        if not self.usable:
            return "", None
        if self.archive.is_file():
            return f"-XX:SharedArchiveFile={self.archive}", None
        if not self.can_dump():
            return "", None
        try:
            self.archive.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return "", None
        dump = self.archive.with_name(f"{self.archive.stem}.{os.getpid()}.{id(self)}.tmp")
        return f"-XX:ArchiveClassesAtExit={dump}", dump

    def can_dump(self) -> bool:
        """Whether this JVM takes -XX:ArchiveClassesAtExit (a JRE built without CDS refuses
        it and would not start at all): `java -version` with it, once (~0.1 s)."""
        if self._dumps is None:
            with tempfile.TemporaryDirectory() as tmp:
                probe = [str(self.java), f"-XX:ArchiveClassesAtExit={tmp}/probe.jsa", "-version"]
                try:
                    done = subprocess.run(probe, capture_output=True, timeout=60)
                    self._dumps = done.returncode == 0
                except (OSError, subprocess.TimeoutExpired):
                    self._dumps = False
        return self._dumps

    def landed(self, dump: Path | None, ok: bool) -> None:
        """After the process: keep a dump of a run that ended well, drop any other."""
        if dump is None:
            return
        try:
            if ok and dump.is_file() and dump.stat().st_size > 0 and not self.archive.exists():
                os.replace(dump, self.archive)
            else:
                dump.unlink(missing_ok=True)
        except OSError:
            dump.unlink(missing_ok=True)
