"""The benchmarks draw their results: `pipetune replay offline/online` and bench/compare.py
write a PNG beside each results table. And `pipetune --help` stays free of the plotting stack."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner
from PIL import Image

from pipetune.cli import main
from pipetune.config import load_config
from pipetune.probing.candidates import probe_candidates
from pipetune.replay import synthetic_trace
from tests.conftest import ROOT, write_project


def a_png(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_the_replays_draw_their_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    conf = write_project(tmp_path, {"search": {"trials": 2, "epochs": 4, "seed": 0}})
    config = load_config(conf)
    trace = tmp_path / "syn.csv.gz"
    settings = probe_candidates(config.system_parameters, "grid")
    synthetic_trace(2, 3, settings, 4, seed=5).save(trace)
    runner = CliRunner()
    args = [str(trace), "--config", str(conf)]
    offline = runner.invoke(main, ["replay", "offline", *args, "--seeds", "2", "--out", "off"])
    assert offline.exit_code == 0, offline.output
    online = runner.invoke(main, ["replay", "online", *args, "--jobs", "40", "--out", "on"])
    assert online.exit_code == 0, online.output
    for table, png in (("off/offline.md", "off/offline.png"), ("on/online.md", "on/online.png")):
        assert Path(table).is_file()
        width, height = a_png(Path(png))
        assert width > 800 and height > 200
    assert "offline.png" in offline.output and "online.png" in online.output


def bench_compare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_compare", ROOT / "bench" / "compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_compare_draws_its_table_from_the_runs_it_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compare = bench_compare()
    monkeypatch.setattr(compare, "OUT", tmp_path)
    with open(ROOT / "bench" / "results" / "compare-cores1-first-runs.csv", newline="") as f:
        rows = [{k: compare._value(v) for k, v in r.items()} for r in csv.DictReader(f)]
    path = compare.plot("cores1-first", compare.summarise(rows), rows)
    assert path == tmp_path / "compare-cores1-first.png"
    width, height = a_png(path)
    assert width > 800 and height > 200


def test_help_imports_no_plotting_or_terminal_library() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipetune", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "report" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "click" in imported  # the check sees what --help imports
    heavy = {name for name in imported if name.split(".")[0] in ("matplotlib", "rich", "PIL")}
    assert not heavy
