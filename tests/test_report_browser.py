"""The report as a reader sees it: opened in a real headless browser, its screenshot is not
blank and shows the figures (the default setting's colour fills their bars)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipetune.cli import main
from pipetune.report.plotting import SETTING_COLOURS
from tests.browser import ink, pixels, screenshot
from tests.report_runs import write_run


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.lstrip("#"), 16)
    return (value >> 16, (value >> 8) & 0xFF, value & 0xFF)


DEFAULT_BLUE = rgb(SETTING_COLOURS[0])


@pytest.mark.slow  # two browser starts: ~5 s here
def test_the_report_in_a_browser_shows_its_figures(tmp_path: Path) -> None:
    run = write_run(tmp_path, resumed=True, failed=True)
    result = CliRunner().invoke(main, ["report", str(run)])
    assert result.exit_code == 0, result.output
    page = run / "report" / "report.html"
    shot = screenshot(page, tmp_path / "report.png")
    assert ink(shot) > 0.05  # text, tables and figures, not a blank page
    # the figures' bars in the default setting's colour: tens of thousands of pixels
    assert pixels(shot, DEFAULT_BLUE) > 10_000
    # the same page with its images taken out has none: the colour comes from the figures
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r'src="data:image/png;base64,[^"]+"', 'src=""', page.read_text()))
    without = screenshot(bare, tmp_path / "bare.png")
    assert pixels(without, DEFAULT_BLUE) < 100 and ink(without) > 0.01
