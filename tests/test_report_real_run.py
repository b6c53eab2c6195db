"""`pipetune report` on a real run of the minimal app (docs/APPS.md), tuned through the real
CLI: stopped with SIGINT after its first trial, resumed, one of its two trials failing. The
report renders, says all that, and shows its figures in a real headless browser."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from pipetune.report.plotting import SETTING_COLOURS
from tests.browser import ink, pixels, screenshot
from tests.conftest import ROOT

pytestmark = pytest.mark.spark

FAILING_APP = '''"""The minimal app, except that it fails at learning rate 0.25: a failed trial."""
import runpy
import sys
from pathlib import Path

if "--learningRate" in sys.argv and sys.argv[sys.argv.index("--learningRate") + 1] == "0.25":
    sys.exit("failing on purpose at learning rate 0.25")
sys.argv[0] = str(Path(__file__).with_name("minimal.py"))
runpy.run_path(sys.argv[0], run_name="__main__")
'''


def project(root: Path) -> None:
    (root / "bigdl" / "config").mkdir(parents=True)
    app = json.loads((ROOT / "bigdl" / "config" / "minimal.json").read_text())
    app["conf"] = "failing.py"
    shutil.copy(ROOT / "applications" / "minimal" / "minimal.py", root / "minimal.py")
    (root / "failing.py").write_text(FAILING_APP)
    (root / "bigdl" / "config" / "minimal.json").write_text(json.dumps(app))
    conf = {
        "bigdlConf": "bigdl/config/minimal.json",
        "systemParameters": {"cores": ["1", "2"]},
        "hyperParameters": {"learning_rate": [0.5, 0.25]},
        "search": {"sampler": "grid", "trials": 2, "epochs": 4, "seed": 0},
        "clustering": {"enabled": False},  # the app has no batch size to key knowledge by
    }
    (root / "pipetune.conf").write_text(json.dumps(conf))


def run_until_first_trial_ends(root: Path) -> Path:
    """Start a run, SIGINT it once its first trial is journaled as ended; its directory."""
    tuner = subprocess.Popen(
        [sys.executable, "-m", "pipetune", "--config", "pipetune.conf", "--quiet"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 400
    journal = None
    while time.monotonic() < deadline and tuner.poll() is None:
        journal = next(root.glob("runs/*/journal.jsonl"), None)
        kinds = [json.loads(x)["type"] for x in journal.read_text().splitlines()] if journal else []
        if "trial_done" in kinds or "trial_failed" in kinds:
            tuner.send_signal(signal.SIGINT)
            break
        time.sleep(0.2)
    output, _ = tuner.communicate(timeout=120)
    assert tuner.returncode == 130 and journal is not None, output
    return journal.parent


def test_a_real_run_stopped_resumed_and_with_a_failed_trial_is_reported(tmp_path: Path) -> None:
    project(tmp_path)
    run_dir = run_until_first_trial_ends(tmp_path)
    resumed = subprocess.run(
        [sys.executable, "-m", "pipetune", "--resume", str(run_dir), "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert sorted(t["status"] for t in summary["trials"]) == ["done", "failed"]
    report = subprocess.run(
        [sys.executable, "-m", "pipetune", "report", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    out = run_dir / "report"
    figures = {p.name for p in out.glob("*.png")}
    assert {"tradeoff.png", "timeline-t000.png", "timeline-t001.png"} <= figures
    done = next(t for t in summary["trials"] if t["status"] == "done")
    assert done["system"]["probes"] and "probes.png" in figures
    for name in figures:
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 600
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(figures)
    failed = next(t for t in summary["trials"] if t["status"] == "failed")
    assert "This run was stopped and resumed 1 time(s)" in html
    log = run_dir / "trials" / failed["id"] / "segment-00.log"  # where the app said why
    assert f"Trial {failed['id']} failed: spark-submit exited with status 1 (log: {log})" in html
    assert "failing on purpose" in log.read_text()
    assert "live switch" in html and f"{done['energy']['source']})" in html
    shot = screenshot(out / "report.html", tmp_path / "screenshot.png", height=3200)
    assert ink(shot) > 0.05
    value = int(SETTING_COLOURS[0].lstrip("#"), 16)
    default_colour = (value >> 16, (value >> 8) & 0xFF, value & 0xFF)
    assert pixels(shot, default_colour) > 5_000  # the default setting's bars in the figures
