"""A real headless browser (Debian's chromium, which scripts/install-system-deps.sh installs)
taking a screenshot of a page, and what the screenshot shows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from tests.machine import require_tool

WHITE = (255, 255, 255)


def screenshot(page: Path, out: Path, width: int = 1300, height: int = 2600) -> Image.Image:
    """`page` as chromium renders it, `width` × `height` pixels from its top."""
    chromium = require_tool("chromium", "apt-get install chromium")
    argv = [
        chromium,
        "--headless",
        "--no-sandbox",  # root in CI and here
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={out.parent / (out.stem + '-profile')}",
        f"--screenshot={out}",
        f"--window-size={width},{height}",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]
    with Image.open(out) as image:
        return image.convert("RGB")


def pixels(image: Image.Image, colour: tuple[int, int, int]) -> int:
    """How many pixels are exactly `colour`."""
    return int(np.all(np.asarray(image) == colour, axis=-1).sum())


def ink(image: Image.Image) -> float:
    """The share of pixels that are not white."""
    return 1.0 - pixels(image, WHITE) / (image.width * image.height)
