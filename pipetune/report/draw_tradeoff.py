"""The run's trade-offs drawn: accuracy against time and against energy for every trial (the
Pareto front and the best trial marked), and each probed setting's epoch time and energy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipetune.report.plotting import (
    FAILED_COLOUR,
    SettingColours,
    add_caveat,
    energy_label,
    pyplot,
)
from pipetune.report.tradeoff import TrialPoint, TrialProbes, pareto_front


def tradeoff_figure(points: list[TrialPoint], failed: int, colours: SettingColours) -> Any:
    plt = pyplot()
    fig, (by_time, by_energy) = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    sources = sorted({p.energy_source for p in points}) or ["none"]
    source = sources[0] if len(sources) == 1 else "mixed"
    _scatter(by_time, points, lambda p: p.time_s, colours)
    by_time.set_xlabel("the trial's tuning time (s): probes and start-ups included")
    by_time.set_ylabel("final accuracy")
    _scatter(by_energy, points, lambda p: p.energy_j, colours)
    by_energy.set_xlabel(f"the trial's {energy_label(source)}")
    left_out = f"; {failed} failed trial(s) not shown" if failed else ""
    fig.suptitle(
        f"Accuracy against time and energy, {len(points)} trial(s){left_out}",
        x=0.01,
        ha="left",
        fontsize=11,
    )
    if not points:
        by_time.text(0.5, 0.5, "no trial finished", transform=by_time.transAxes, ha="center")
    handles, labels = by_energy.get_legend_handles_labels()
    by_energy.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    add_caveat(fig, source)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def _scatter(
    ax: Any, points: list[TrialPoint], cost: Callable[[TrialPoint], float], c: SettingColours
) -> None:
    for setting in dict.fromkeys(p.setting for p in points):
        mine = [p for p in points if p.setting == setting]
        ax.scatter(
            [cost(p) for p in mine],
            [p.accuracy for p in mine],
            s=46,
            zorder=3,
            color=c.colour(setting),
            edgecolor="black",
            linewidth=0.5,
            label=f"chosen {setting}",
        )
    for p in points:
        ax.annotate(
            p.trial,
            (cost(p), p.accuracy),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=7,
            color="#444444",
        )
    front = pareto_front(points, cost)
    if front:
        xs, ys = [cost(p) for p in front], [p.accuracy for p in front]
        ax.step(
            xs,
            ys,
            where="post",
            color="black",
            linestyle="--",
            linewidth=1.1,
            zorder=2,
            label="Pareto front",
        )
    for p in points:
        if p.best:
            ax.scatter(
                [cost(p)],
                [p.accuracy],
                s=380,
                marker="*",
                facecolor="none",
                zorder=4,
                edgecolor=FAILED_COLOUR,
                linewidth=1.6,
                label=f"best: {p.trial}",
            )
    ax.grid(color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.margins(0.12)  # room for the trial names beside the points


def probes_figure(trials: list[TrialProbes], colours: SettingColours) -> Any:
    """A row per probed trial: each probe's epoch time (left) and energy (right)."""
    plt = pyplot()
    fig, axes = plt.subplots(len(trials), 2, figsize=(11, 0.6 + 2.3 * len(trials)), squeeze=False)
    measured = [b for t in trials for b in t.probes if b.energy_j is not None and not b.error]
    sources = sorted({b.energy_source for b in measured}) or ["none"]
    source = sources[0] if len(sources) == 1 else "mixed"
    for row, trial in zip(axes, trials, strict=True):
        _probe_bars(row[0], trial, colours, lambda b: b.epoch_s)
        row[0].set_ylabel(f"{trial.trial}\nepoch s")
        _probe_bars(row[1], trial, colours, lambda b: b.energy_j)
        row[1].set_ylabel(energy_label(source).replace("energy ", "energy\n"))
    axes[0][0].set_title("an epoch at each probed setting's pace (s)", fontsize=10, loc="left")
    axes[0][1].set_title(f"{energy_label(source)} of an epoch at it", fontsize=10, loc="left")
    fig.suptitle("Probes: ★ the setting chosen", x=0.01, ha="left", fontsize=11)
    add_caveat(fig, source)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _probe_bars(
    ax: Any, trial: TrialProbes, colours: SettingColours, value: Callable[[Any], float | None]
) -> None:
    probes = trial.probes
    heights = [value(b) or 0.0 for b in probes]
    ax.bar(
        range(len(probes)),
        heights,
        width=0.6,
        color=[colours.colour(b.setting) for b in probes],
        edgecolor=["black" if b.chosen else "white" for b in probes],
        linewidth=[2.2 if b.chosen else 0.5 for b in probes],
    )
    top = max(heights, default=0.0) or 1.0
    for i, b in enumerate(probes):
        shown = value(b)
        text = "failed" if b.error else ("–" if shown is None else f"{shown:,.1f}")
        text = ("★ " if b.chosen else "") + text
        colour = FAILED_COLOUR if b.error else "black"
        ax.text(
            i, heights[i] + top * 0.03, text, ha="center", va="bottom", fontsize=8, color=colour
        )
    ax.set_xticks(range(len(probes)), [f"{b.setting}\n({b.how})" for b in probes], fontsize=8)
    ax.set_ylim(0, top * 1.25)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
