"""One run's report: `report.html` (self-contained) and the same figures as PNG files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipetune.report import html_page as h
from pipetune.report.notices import run_notices
from pipetune.report.plotting import SettingColours, write_png
from pipetune.report.run_dir import RunData, load_run
from pipetune.report.tables import energy, num, run_table, trial_tables, trials_table
from pipetune.report.timeline import TrialTimeline, trial_timelines
from pipetune.report.tradeoff import label_of, trial_points, trial_probes

REPORT_NAME = "report.html"


@dataclass
class ReportFiles:
    html: Path
    figures: list[Path] = field(default_factory=list)


def write_run_report(path: Path, out: Path | None = None) -> ReportFiles:
    """Read the run at `path`, write its report into `out` (default: `path`/report)."""
    run = load_run(path)
    out = out if out is not None else path / "report"
    timelines = trial_timelines(run.events)
    colours = run_colours(run, timelines)
    files = ReportFiles(out / REPORT_NAME)
    parts = [*_head(run), *_tradeoffs(run, colours, out, files)]
    parts += _timelines(run, timelines, colours, out, files)
    files.html.parent.mkdir(parents=True, exist_ok=True)
    files.html.write_text(h.page(f"PipeTune run {run.run_id}", parts), encoding="utf-8")
    return files


def run_colours(run: RunData, timelines: list[TrialTimeline]) -> SettingColours:
    """The default setting first, then every other in the order the run met it."""
    trials = run.trials
    labels = [label_of(trials[0]["system"].get("default"))] if trials else []
    labels += [bar.setting for tl in timelines for bar in tl.bars]
    labels += [label_of(t["system"]["chosen"]) for t in trials if t["system"]["chosen"]]
    return SettingColours(label for label in labels if label != "-")


def _head(run: RunData) -> list[str]:
    s = run.summary
    totals = s["totals"]
    meta = (
        f"mode {s['mode']} · status {s['status']} · {len(s['trials'])} trial(s) · "
        f"{num(totals['time_s'])} s · {energy(totals['energy'])} · {run.path}"
    )
    return [
        h.heading(1, f"PipeTune run {run.run_id}"),
        h.paragraph(meta, "meta"),
        h.notices_html(run_notices(run)),
        h.heading(2, "Summary"),
        h.table_html(run_table(s), caption=False),
        h.table_html(trials_table(s)),
    ]


def _figure(fig: Any, out: Path, name: str, files: ReportFiles, alt: str, caption: str) -> str:
    png = write_png(fig, out / name)
    files.figures.append(out / name)
    return h.figure_html(png, alt, caption)


def _tradeoffs(run: RunData, colours: SettingColours, out: Path, files: ReportFiles) -> list[str]:
    from pipetune.report.draw_tradeoff import probes_figure, tradeoff_figure

    points = trial_points(run.summary)
    failed = sum(1 for t in run.trials if t["status"] == "failed")
    parts = [h.heading(2, "Accuracy, time and energy")]
    fig = tradeoff_figure(points, failed, colours)
    caption = (
        "Each finished trial; the dashed line is the Pareto front (no other trial is both "
        "cheaper and more accurate); the star is the run's best trial."
    )
    parts.append(
        _figure(fig, out, "tradeoff.png", files, "accuracy against time and energy", caption)
    )
    parts.append(h.heading(2, "Probes"))
    probed = trial_probes(run.summary)
    if not probed:
        parts.append(h.paragraph(f"No trial probed a setting (mode {run.summary['mode']})."))
        return parts
    caption = (
        "Per trial, each probed setting: the time of an epoch at its warm pace (what the choice "
        "compared; a window's pace over a whole epoch) and the energy of such an epoch."
    )
    fig = probes_figure(probed, colours)
    parts.append(_figure(fig, out, "probes.png", files, "probed settings", caption))
    return parts


def _timelines(
    run: RunData,
    timelines: list[TrialTimeline],
    colours: SettingColours,
    out: Path,
    files: ReportFiles,
) -> list[str]:
    from pipetune.report.draw_timeline import timeline_figure

    from_summary = {t["id"]: t for t in run.trials}
    parts = [h.heading(2, "Timelines")]
    for timeline in timelines:
        trial = from_summary.get(timeline.trial)
        title = _timeline_title(timeline.trial, trial)
        fig = timeline_figure(timeline, colours, title)
        name = f"timeline-{timeline.trial}.png"
        parts.append(h.heading(3, title, anchor=timeline.trial))
        parts.append(
            _figure(
                fig, out, name, files, f"timeline of {timeline.trial}", _marks_caption(timeline)
            )
        )
        for table in trial_tables(trial) if trial else []:
            parts.append(h.table_html(table))
    return parts


def _timeline_title(trial_id: str, trial: dict[str, Any] | None) -> str:
    if trial is None:
        return f"{trial_id} (not in summary.json yet)"
    hyper = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in trial["hyperparameters"].items()
    )
    system = trial["system"]
    return (
        f"{trial_id} · {trial['status']} · {hyper} · chosen {label_of(system['chosen'])} "
        f"({system['source']}) · {num(trial['time']['total_s'])} s · {energy(trial['energy'])}"
    )


def _marks_caption(timeline: TrialTimeline) -> str:
    if not timeline.marks:
        return "Bars: start-up, epochs (e), probe windows (w), save and teardown."
    marks = "; ".join(f"{m.at_s:,.1f} s {m.text}" for m in timeline.marks)
    return f"Marks: {marks}."
