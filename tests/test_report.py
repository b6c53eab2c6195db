"""`pipetune report` on synthetic run directories written by the real writers: the HTML page,
its figures, the notices for stopped, resumed and failed runs, several runs side by side, and
the one-line errors for what is not a run."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from pipetune.cli import main
from pipetune.report.compare import comparison_table, run_row
from pipetune.report.run_dir import load_run
from tests.report_runs import FAILURE, write_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def report(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["report", *args])
    return result.exit_code, result.output


def embedded_images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_a_report_is_one_page_with_its_figures_embedded_and_as_files(tmp_path: Path) -> None:
    run = write_run(tmp_path)
    code, output = report(str(run), "--out", str(tmp_path / "out"))
    assert code == 0, output
    out = tmp_path / "out"
    names = {"tradeoff.png", "probes.png", "timeline-t000.png", "timeline-t001.png"}
    assert {p.name for p in out.glob("*.png")} == names
    html = (out / "report.html").read_text()
    # every figure is in the page, byte for byte, and nothing is fetched from elsewhere
    assert sorted(embedded_images(html)) == sorted(p.read_bytes() for p in out.glob("*.png"))
    assert "<script" not in html and 'src="http' not in html and "<link" not in html
    for png in out.glob("*.png"):
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width > 600 and image.height > 150
    # the tables of summary.json, readable
    for text in ("Trials", "chosen setting", "cores=2", "probing cores=1", "Switches of setting"):
        assert text in html
    assert "t000: accuracy 0.9000" in html  # the best trial
    # energy always says where it came from; an estimate says so up front
    assert "335 J (estimate)" in html and "The energy is an ESTIMATE" in html
    assert f"report: {out / 'report.html'}" in output


def test_the_report_goes_into_the_run_directory_by_default(tmp_path: Path) -> None:
    run = write_run(tmp_path)
    code, output = report(str(run))
    assert code == 0, output
    assert (run / "report" / "report.html").is_file()
    assert (run / "report" / "timeline-t001.png").is_file()


def test_a_resumed_run_with_a_failed_trial_renders_and_says_so(tmp_path: Path) -> None:
    run = write_run(tmp_path, resumed=True, failed=True)
    code, output = report(str(run), "--out", str(tmp_path / "out"))
    assert code == 0, output
    html = (tmp_path / "out" / "report.html").read_text()
    assert "This run was stopped and resumed 1 time(s)" in html
    assert f"Trial t001 failed: {FAILURE}" in html
    assert "1 failed trial(s) not shown" not in html  # that is in the figure, not the page
    assert (tmp_path / "out" / "timeline-t001.png").is_file()  # a failed trial has a timeline


def test_a_stopped_run_says_how_to_continue_it(tmp_path: Path) -> None:
    run = write_run(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    summary["status"] = "interrupted"
    (run / "summary.json").write_text(json.dumps(summary))
    code, output = report(str(run))
    assert code == 0, output
    html = (run / "report" / "report.html").read_text()
    assert f"continue it with `pipetune --resume {run}`" in html


def test_a_meter_reading_carries_no_estimate_caveat(tmp_path: Path) -> None:
    run = write_run(tmp_path, source="rapl")
    code, output = report(str(run))
    assert code == 0, output
    html = (run / "report" / "report.html").read_text()
    assert "ESTIMATE" not in html and "J (rapl)" in html


def test_several_runs_side_by_side_with_ratios_to_the_first(tmp_path: Path) -> None:
    v1 = write_run(tmp_path, "v1-run", mode="v1")
    pipetune = write_run(tmp_path, "pipetune-run")
    out = tmp_path / "cmp"
    code, output = report(str(v1), str(pipetune), "--out", str(out))
    assert code == 0, output
    html = (out / "compare.html").read_text()
    assert len(embedded_images(html)) == 1 and (out / "compare.png").read_bytes()[:8] == PNG_MAGIC
    assert "v1-run (v1)" in html and "pipetune-run (pipetune)" in html
    rows = comparison_table([run_row(load_run(v1)), run_row(load_run(pipetune))]).rows
    # v1: 2 trials × 40 s, 300 J; pipetune: 2 × 36.4 s, 335 J
    assert rows[0][3:5] == ("80.0", "1.00") and rows[1][3:5] == ("72.8", "0.91")
    assert rows[0][5:7] == ("600 (estimate)", "1.00") and rows[1][5:7] == ("670 (estimate)", "1.12")
    assert rows[1][8] == "+0.0000"  # the same best accuracy


def corrupt(run: Path, name: str, text: str) -> Path:
    (run / name).write_text(text)
    return run / name


def journal_lines(run: Path) -> list[str]:
    return (run / "journal.jsonl").read_text().splitlines()


def broken_event(run: Path) -> Path:
    """The first segment_done event (line 8) without its epochs."""
    lines = journal_lines(run)
    event = json.loads(lines[7])
    assert event["type"] == "segment_done"
    del event["epochs"]
    lines[7] = json.dumps(event)
    return corrupt(run, "journal.jsonl", "\n".join(lines) + "\n")


CASES = {
    "no journal": (lambda run: (run / "journal.jsonl").unlink() or run, "it has no journal.jsonl"),
    "not JSON": (lambda run: corrupt(run, "summary.json", '{"run_id": "r'), "corrupt: not JSON"),
    "no trials": (
        lambda run: corrupt(run, "summary.json", '{"run_id": "r", "mode": "v1"}'),
        "corrupt: status is missing (and 3 more)",
    ),
    "a bad trial": (
        lambda run: corrupt(
            run,
            "summary.json",
            (run / "summary.json").read_text().replace('"total_s": 36.4', '"total_s": "soon"'),
        ),
        "corrupt: trials[0].time.total_s: expected a number or null, found 'soon'",
    ),
    "no summary": (lambda run: (run / "summary.json").unlink() or run, "summary.json: missing"),
    "a torn line": (
        lambda run: corrupt(run, "journal.jsonl", "\n".join(journal_lines(run)[:3] + ["{"] * 2)),
        "journal.jsonl:4: corrupt journal line",
    ),
    "a bad event": (broken_event, "journal.jsonl:8: corrupt journal: a 'segment_done' event"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_what_is_not_a_run_is_one_line_naming_the_file(tmp_path: Path, case: str) -> None:
    spoil, expected = CASES[case]
    run = write_run(tmp_path)
    named = spoil(run)
    code, output = report(str(run))
    assert code == 1
    assert output.count("\n") == 1 and output.startswith("error: "), output
    assert expected in output and str(named) in output
    assert not (run / "report").exists()


def test_a_real_process_prints_the_line_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "pipetune", "report", str(tmp_path / "notes")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: {tmp_path / 'notes'} is not a PipeTune run directory: it has no journal.jsonl"
    ]
    missing = subprocess.run(
        [sys.executable, "-m", "pipetune", "report", str(tmp_path / "gone")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [f"error: {tmp_path / 'gone'}: not a directory"]
