"""A trial's timeline drawn: one row per process, its stints and epochs as bars over wall time
coloured by system setting; start-ups, probes and windows hatched; switches, failures, stops
and resumes as vertical lines."""

from __future__ import annotations

from typing import Any

from pipetune.report.plotting import FAILED_COLOUR, SettingColours, pyplot
from pipetune.report.timeline import Bar, BarKind, MarkKind, TrialTimeline

BAR_HEIGHT = 0.62
# per kind: fill alpha, hatch, edge colour (None: the setting's colour), edge width
BAR_STYLE: dict[BarKind, tuple[float, str, str | None, float]] = {
    BarKind.STARTUP: (0.28, "..", None, 0.8),
    BarKind.SWITCH: (1.0, "", "black", 0.8),
    BarKind.WARMUP: (0.65, "..", "black", 0.6),
    BarKind.PROBE: (1.0, "///", "black", 1.4),
    BarKind.WINDOW: (1.0, "xx", "black", 1.4),
    BarKind.EPOCH: (1.0, "", "white", 0.8),
    BarKind.END: (0.6, "", "#999999", 0.6),
    BarKind.FAILED: (1.0, "xxx", FAILED_COLOUR, 1.2),
}
MARK_STYLE: dict[MarkKind, tuple[str, Any, float]] = {  # colour, line style, width
    MarkKind.LIVE: ("#222222", ":", 1.6),
    MarkKind.RESTART: ("#222222", "--", 1.6),
    MarkKind.FAILED: (FAILED_COLOUR, "-", 2.0),
    MarkKind.INTERRUPTED: ("#c2185b", "-", 2.0),
    MarkKind.RESUMED: ("#c2185b", "-.", 2.0),
    MarkKind.TRIAL_RESTARTED: (FAILED_COLOUR, "--", 2.0),
}
LABELLED = (MarkKind.FAILED, MarkKind.RESUMED, MarkKind.INTERRUPTED, MarkKind.TRIAL_RESTARTED)


def timeline_figure(timeline: TrialTimeline, colours: SettingColours, title: str) -> Any:
    plt = pyplot()
    lanes = timeline.lanes or ["(nothing ran)"]
    fig, ax = plt.subplots(figsize=(11, 1.9 + 0.5 * len(lanes)))
    span = max(timeline.end_s, 1.0) * 1.02
    rows = {lane: i for i, lane in enumerate(lanes)}
    for bar in timeline.bars:
        _draw_bar(ax, bar, rows[bar.lane], colours, span)
    for i, mark in enumerate(timeline.marks):
        colour, style, width = MARK_STYLE[mark.kind]
        ax.axvline(mark.at_s, color=colour, linestyle=style, linewidth=width, zorder=3)
        if mark.kind in LABELLED:
            y = -0.55 - 0.28 * (i % 2)  # above the first row, alternating so two do not collide
            left = mark.at_s > span * 0.6  # late marks: the text to the left of the line
            text = f"{_short(mark.text)} " if left else f" {_short(mark.text)}"
            ax.text(
                mark.at_s,
                y,
                text,
                color=colour,
                fontsize=8,
                va="center",
                ha="right" if left else "left",
            )
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_ylim(len(lanes) - 0.4, -1.0)
    ax.set_xlim(0, span)
    cut = f"; {timeline.cut_s:,.0f} s of a stop cut out" if timeline.cut_s else ""
    ax.set_xlabel(f"seconds since the trial started{cut}")
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(handles=_legend(timeline, colours), loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _draw_bar(ax: Any, bar: Bar, row: int, colours: SettingColours, span: float) -> None:
    alpha, hatch, edge, width = BAR_STYLE[bar.kind]
    colour = colours.colour(bar.setting)
    face = "white" if bar.kind is BarKind.FAILED else colour
    if bar.kind is BarKind.END:
        face = "#cccccc"
    if bar.kind is BarKind.SWITCH:
        face = "black"
    fade = 0.35 if bar.discarded else 1.0
    ax.barh(
        row,
        bar.width_s,
        left=bar.start_s,
        height=BAR_HEIGHT,
        color=face,
        alpha=alpha * fade,
        hatch=hatch,
        edgecolor=edge or colour,
        linewidth=width,
    )
    label = bar.text or (bar.kind.value if bar.kind is BarKind.STARTUP else "")
    if label and bar.width_s > span * 0.008 * (len(label) + 1):
        ax.text(
            bar.start_s + bar.width_s / 2,
            row,
            label,
            ha="center",
            va="center",
            fontsize=8,
            color="black",
            zorder=4,
            bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.7},
        )


def _legend(timeline: TrialTimeline, colours: SettingColours) -> list[Any]:
    import matplotlib.lines as mlines
    import matplotlib.patches as mpatches

    used = {bar.setting for bar in timeline.bars}
    handles: list[Any] = [
        mpatches.Patch(color=colour, label=label)
        for label, colour in colours.items()
        if label in used
    ]
    kinds = dict.fromkeys(bar.kind for bar in timeline.bars)
    for kind in BarKind:
        if kind in kinds and kind not in (BarKind.EPOCH, BarKind.SWITCH):
            _, hatch, edge, _ = BAR_STYLE[kind]
            face = "#cccccc" if kind is BarKind.END else "white"
            handles.append(
                mpatches.Patch(
                    facecolor=face, hatch=hatch, edgecolor=edge or "#555555", label=kind.value
                )
            )
    for mark_kind in dict.fromkeys(mark.kind for mark in timeline.marks):
        colour, style, width = MARK_STYLE[mark_kind]
        handles.append(
            mlines.Line2D(
                [], [], color=colour, linestyle=style, linewidth=width, label=mark_kind.value
            )
        )
    return handles


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
