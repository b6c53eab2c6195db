"""The driver's class-data-sharing archive: which option a launch gets, and when it lands."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pipetune.backends.cds import ClassDataSharing, java_major
from pipetune.spark_env import SparkEnvironment


def environment(tmp_path: Path, version: str | None, dumps: bool = True) -> SparkEnvironment:
    java = tmp_path / "java"
    (java / "bin").mkdir(parents=True, exist_ok=True)
    # a stand-in `java` for the one-off probe: takes the option, or refuses it like a JRE
    # built without class-data sharing
    (java / "bin" / "java").write_text(f"#!/bin/sh\nexit {0 if dumps else 1}\n")
    (java / "bin" / "java").chmod(0o755)
    if version is not None:
        (java / "release").write_text(f'IMPLEMENTOR="X"\nJAVA_VERSION="{version}"\n')
    return SparkEnvironment(
        spark_home=tmp_path / "spark",
        java_home=java,
        dllib_jar=tmp_path / "bigdl-dllib.jar",
        core_jar=tmp_path / "bigdl-core.jar",
        properties_file=tmp_path / "spark-bigdl.conf",
        python=str(tmp_path / "python"),
        python_home=str(tmp_path),
        python_path=str(tmp_path),
        cpus=(0, 1),
    )


def test_the_java_version_comes_from_the_runtimes_release_file(tmp_path: Path):
    assert java_major(environment(tmp_path, "17.0.15").java_home) == 17
    assert java_major(environment(tmp_path, "1.8.0_392").java_home) == 8
    (tmp_path / "java" / "release").unlink()
    assert java_major(tmp_path / "java") is None


def test_the_first_launch_dumps_the_archive_and_the_next_ones_map_it(tmp_path: Path):
    cds = ClassDataSharing(environment(tmp_path, "17.0.15"), tmp_path / "cache")
    option, dump = cds.launch()
    assert dump is not None and option == f"-XX:ArchiveClassesAtExit={dump}"
    assert dump.parent == cds.archive.parent and dump != cds.archive
    dump.write_bytes(b"classes")  # what the JVM writes at its exit
    cds.landed(dump, ok=True)
    assert cds.archive.read_bytes() == b"classes" and not dump.exists()
    assert cds.launch() == (f"-XX:SharedArchiveFile={cds.archive}", None)


def test_a_run_that_failed_leaves_no_archive(tmp_path: Path):
    cds = ClassDataSharing(environment(tmp_path, "21"), tmp_path / "cache")
    _, dump = cds.launch()
    assert dump is not None
    dump.write_bytes(b"half")
    cds.landed(dump, ok=False)
    assert not dump.exists() and not cds.archive.exists()
    _, again = cds.launch()  # the next launch tries again
    cds.landed(again, ok=True)  # the JVM wrote nothing (killed): still none
    assert not cds.archive.exists()


def test_a_jvm_that_refuses_the_option_gets_none(tmp_path: Path):
    cds = ClassDataSharing(environment(tmp_path, "17", dumps=False), tmp_path / "cache")
    assert cds.launch() == ("", None) and cds.can_dump() is False


def test_an_old_or_unknown_java_gets_no_option(tmp_path: Path):
    assert ClassDataSharing(environment(tmp_path, "11.0.2"), tmp_path).launch() == ("", None)
    assert ClassDataSharing(environment(tmp_path, None), tmp_path).launch() == ("", None)


def test_another_class_path_is_another_archive(tmp_path: Path):
    env = environment(tmp_path, "17")
    one = ClassDataSharing(env, tmp_path)
    other = ClassDataSharing(dataclasses.replace(env, dllib_jar=tmp_path / "other.jar"), tmp_path)
    assert one.archive != other.archive
