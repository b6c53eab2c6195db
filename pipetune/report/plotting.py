"""What every figure shares: matplotlib (imported here, when a figure is drawn, never with the
CLI), one colour per system setting, energy labels that name their source, PNG output."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

DPI = 110
# Settings take these colours in order (the default first); red is kept for failures.
SETTING_COLOURS = (
    "#1f77b4",  # the first setting (the default): tests look for it in a screenshot
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#17becf",
    "#bcbd22",
    "#e377c2",
    "#7f7f7f",
    "#aec7e8",
)
FAILED_COLOUR = "#d62728"
ESTIMATED = ("estimate", "mixed")


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class SettingColours:
    """A colour per setting label, the same in every figure of a report."""

    def __init__(self, labels: Iterable[str]) -> None:
        self._colours: dict[str, str] = {}
        for label in labels:
            self.colour(label)

    def colour(self, label: str) -> str:
        if label not in self._colours:
            self._colours[label] = SETTING_COLOURS[len(self._colours) % len(SETTING_COLOURS)]
        return self._colours[label]

    def items(self) -> list[tuple[str, str]]:
        return list(self._colours.items())


def energy_label(source: str) -> str:
    """An energy axis or column: its unit and where the figure came from."""
    return f"energy (J, {source})"


def energy_caveat(source: str) -> str | None:
    """What a figure must say about estimated energy, or None for a meter's."""
    if source == "estimate":
        return "energy is an ESTIMATE (CPU time × W/core + idle), not a meter reading"
    if source == "mixed":
        return "energy is partly an ESTIMATE: some windows had no meter reading"
    return None


def add_caveat(fig: Any, source: str) -> None:
    """The estimate's caveat, written inside the figure, under its axes."""
    caveat = energy_caveat(source)
    if caveat:
        fig.text(0.01, 0.005, caveat, fontsize=8, style="italic", color="#a0522d", va="bottom")


def png_bytes(fig: Any) -> bytes:
    """The figure as PNG (everything drawn outside the axes included), and closed."""
    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buffer.getvalue()


def write_png(fig: Any, path: Path) -> bytes:
    data = png_bytes(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data
