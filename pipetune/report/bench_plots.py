"""The benchmark and replay tables drawn: one PNG beside each results table.

`strategies_figure` draws rows of strategies against v1 (bench/compare.py, `pipetune replay
offline`): tuning time and energy as ratios to v1 (median, with the min–max range over
repetitions or seeds) and best accuracy; `online_figure` the online replay's response times,
offered loads and energy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune.report.plotting import SettingColours, add_caveat, energy_label, pyplot, write_png


@dataclass(frozen=True)
class Panel:
    title: str
    values: Sequence[float | None]
    low: Sequence[float | None] | None = None  # the range drawn around each value
    high: Sequence[float | None] | None = None
    reference: float | None = None  # a vertical line: 1.0 for ratios to v1
    fmt: str = ".2f"


def panels_figure(labels: list[str], panels: list[Panel], title: str, energy_source: str) -> Any:
    """A column of horizontal bars per panel, one row per label, the same colour per label."""
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.9 * len(panels), 1.4 + 0.42 * len(labels)), sharey=True
    )
    colours = [SettingColours(labels).colour(label) for label in labels]
    for ax, panel in zip(axes, panels, strict=True):
        _draw_panel(ax, panel, colours)
    axes[0].set_yticks(range(len(labels)), labels, fontsize=9)
    axes[0].invert_yaxis()
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    add_caveat(fig, energy_source)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def _draw_panel(ax: Any, panel: Panel, colours: list[str]) -> None:
    rows = list(range(len(colours)))
    values = [v if v is not None else 0.0 for v in panel.values]
    ax.barh(rows, values, height=0.62, color=colours)
    if panel.low is not None and panel.high is not None:
        lows = [v - (lo if lo is not None else v) for v, lo in zip(values, panel.low, strict=True)]
        highs = [
            (hi if hi is not None else v) - v for v, hi in zip(values, panel.high, strict=True)
        ]
        ax.errorbar(values, rows, xerr=[lows, highs], fmt="none", ecolor="black", capsize=3)
    highest = [v if v is not None else 0.0 for v in (panel.high or values)]
    for i, v in enumerate(panel.values):
        shown = "–" if v is None else format(v, panel.fmt)
        ax.text(max(values[i], highest[i], 0.0), i, f"  {shown}", va="center", fontsize=8)
    if panel.reference is not None:
        ax.axvline(panel.reference, color="#555555", linestyle="--", linewidth=1)
    top = max([*values, *(v for v in (panel.high or []) if v is not None)], default=1.0)
    ax.set_xlim(0, (top or 1.0) * 1.3)
    ax.set_title(panel.title, fontsize=10)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)


def _source(rows: list[dict[str, Any]], default: str = "estimate") -> str:
    sources = {str(r.get("energy_source") or default) for r in rows}
    return sources.pop() if len(sources) == 1 else "mixed"


def strategies_figure(rows: list[dict[str, Any]], title: str, source: str | None = None) -> Any:
    """Strategies against v1: rows with `strategy` (and `workload` when several), medians
    `<metric>_vs_v1` with `_min`/`_max`, and `best_accuracy`."""
    workloads = {r.get("workload") for r in rows}
    labels = [
        f"{r['workload']} · {r['strategy']}" if len(workloads) > 1 else str(r["strategy"])
        for r in rows
    ]
    source = source or _source(rows)

    def ratio(metric: str, panel_title: str) -> Panel:
        return Panel(
            panel_title,
            [r.get(f"{metric}_vs_v1") for r in rows],
            [r.get(f"{metric}_vs_v1_min") for r in rows],
            [r.get(f"{metric}_vs_v1_max") for r in rows],
            reference=1.0,
        )

    panels = [
        ratio("tuning_s", "tuning time × v1 (lower is better)"),
        ratio("energy_j", f"{energy_label(source)} × v1"),
        Panel("best accuracy", [r.get("best_accuracy") for r in rows], fmt=".3f"),
    ]
    return panels_figure(labels, panels, title, source)


def online_figure(rows: list[dict[str, Any]], title: str) -> Any:
    """The online replay per strategy: response times, offered load, energy against v1's."""
    labels = [str(r["strategy"]) for r in rows]
    source = _source(rows)
    v1_energy = rows[0].get("energy_j") or None
    panels = [
        Panel(
            "mean response s (bar to p95)",
            [r.get("mean_response_s") for r in rows],
            [r.get("mean_response_s") for r in rows],
            [r.get("p95_response_s") for r in rows],
            fmt=",.0f",
        ),
        Panel("offered load", [r.get("offered_load") for r in rows], reference=1.0),
        Panel(
            f"{energy_label(source)} × {labels[0]}",
            [(r["energy_j"] / v1_energy) if v1_energy else None for r in rows],
            reference=1.0,
        ),
    ]
    return panels_figure(labels, panels, title, source)


def write_figure(fig: Any, path: Path) -> Path:
    write_png(fig, path)
    return path
