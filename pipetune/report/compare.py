"""Several runs side by side (for example v1, v2 and pipetune on the same job): tuning time,
energy and best accuracy, with ratios to the first run; compare.html and compare.png."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune.report import html_page as h
from pipetune.report.notices import run_notices
from pipetune.report.plotting import SettingColours, add_caveat, energy_label, pyplot, write_png
from pipetune.report.run_dir import RunData, load_run
from pipetune.report.single import ReportFiles
from pipetune.report.tables import Table, num

COMPARE_NAME = "compare.html"


@dataclass(frozen=True)
class RunRow:
    label: str  # the run's id and mode
    status: str
    trials: str  # done of planned
    time_s: float | None
    energy_j: float | None
    energy_source: str
    best_accuracy: float | None


def run_row(run: RunData) -> RunRow:
    s = run.summary
    totals = s["totals"]
    best = s.get("best") or {}
    accuracy = best.get("accuracy")
    done = sum(1 for t in s["trials"] if t["status"] == "done")
    return RunRow(
        f"{run.run_id} ({s['mode']})",
        s["status"],
        f"{done} of {s.get('planned_trials', len(s['trials']))}",
        totals["time_s"],
        totals["energy"]["joules"],
        totals["energy"]["source"],
        float(accuracy) if isinstance(accuracy, int | float) else None,
    )


def ratio(value: float | None, first: float | None) -> float | None:
    """`value` / `first`; None where either is missing or the first is zero."""
    if value is None or not first:
        return None
    return value / first


def comparison_table(rows: list[RunRow]) -> Table:
    first = rows[0]
    out = []
    for r in rows:
        gap = None
        if r.best_accuracy is not None and first.best_accuracy is not None:
            gap = r.best_accuracy - first.best_accuracy
        out.append(
            (
                r.label,
                r.status,
                r.trials,
                num(r.time_s),
                num(ratio(r.time_s, first.time_s), ".2f"),
                f"{num(r.energy_j, ',.0f')} ({r.energy_source})",
                num(ratio(r.energy_j, first.energy_j), ".2f"),
                num(r.best_accuracy, ".4f"),
                num(gap, "+.4f"),
            )
        )
    header = (
        "run",
        "status",
        "trials done",
        "tuning s",
        "× first",
        "energy J",
        "× first",
        "best accuracy",
        "Δ first",
    )
    return Table("Runs side by side (ratios to the first run)", header, out)


def comparison_figure(rows: list[RunRow]) -> Any:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 1.6 + 0.55 * len(rows)), sharey=True)
    sources = sorted({r.energy_source for r in rows})
    source = sources[0] if len(sources) == 1 else "mixed"
    first = rows[0]
    panels = (
        ("tuning time (s)", [r.time_s for r in rows], first.time_s),
        (energy_label(source), [r.energy_j for r in rows], first.energy_j),
        ("best accuracy", [r.best_accuracy for r in rows], None),
    )
    colours = SettingColours(r.label for r in rows)
    y = list(range(len(rows)))
    for ax, (title, values, base) in zip(axes, panels, strict=True):
        shown = [v or 0.0 for v in values]
        ax.barh(y, shown, color=[colours.colour(r.label) for r in rows], height=0.6)
        for i, v in enumerate(values):
            text = "–" if v is None else f"{v:,.4g}"
            factor = ratio(v, base)
            text += f"  ×{factor:.2f}" if factor is not None and base is not None else ""
            ax.text(shown[i], i, f" {text}", va="center", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlim(0, max(shown, default=1.0) * 1.45 or 1.0)
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].set_yticks(y, [r.label for r in rows], fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle(f"{len(rows)} runs; × the first run", x=0.01, ha="left", fontsize=11)
    add_caveat(fig, source)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def write_comparison(paths: list[Path], out: Path) -> ReportFiles:
    runs = [load_run(p) for p in paths]
    rows = [run_row(run) for run in runs]
    files = ReportFiles(out / COMPARE_NAME, [out / "compare.png"])
    png = write_png(comparison_figure(rows), files.figures[0])
    parts = [
        h.heading(1, f"{len(runs)} PipeTune runs side by side"),
        h.paragraph(" · ".join(str(p) for p in paths), "meta"),
        h.figure_html(
            png,
            "runs side by side",
            "Bars: each run's totals; × its ratio to the "
            "first run (tuning time and energy: lower is better).",
        ),
        h.table_html(comparison_table(rows), caption=False),
    ]
    for run in runs:
        notices = run_notices(run)
        if notices:
            parts += [h.heading(3, run.run_id), h.notices_html(notices)]
    out.mkdir(parents=True, exist_ok=True)
    files.html.write_text(h.page("PipeTune runs side by side", parts), encoding="utf-8")
    return files
