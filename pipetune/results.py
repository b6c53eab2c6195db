"""Per-trial accounting and the run's result files: summary.json, trials.csv, epochs.csv.

A trial's time and energy include every segment it ran: probes, failed probes and every
segment's start-up. Its accuracy is its final epoch's.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from pathlib import Path
from typing import Any

from pipetune.probing import window
from pipetune.probing.history import TrialHistory
from pipetune.probing.plan import TrialPlan
from pipetune.records import ApplyMode, Energy, Role, SegmentRecord, SettingSource, SystemSetting
from pipetune.run_state import RunState, TrialState


def trial_summary(trial: TrialState, plan: TrialPlan, default: SystemSetting) -> dict[str, Any]:
    segments = trial.segments
    history = trial.history()
    epochs = sorted((e for s in segments if s.ok for e in s.epochs), key=lambda e: e.epoch)
    chosen, source = plan.chosen(history)
    # A recognised trial's profiling epoch trained at the default setting: it was no probe.
    probing = source is not SettingSource.RECOGNIZED
    # window probes run inside epochs: their time is the windows' own, out of those epochs'
    # (an epoch that ended inside a window is in the window's time already)
    probe_s = sum(s.wall_s for s in segments if s.window is not None and probing) + sum(
        e.wall_s
        for s in segments
        if s.ok and s.role is Role.PROBE and s.window is None and probing
        for e in s.epochs
    )
    train_s = sum(e.wall_s for s in segments if s.ok for e in s.epochs) - probe_s
    total_s = sum(s.wall_s for s in segments)
    energy = sum((s.energy for s in segments), Energy.zero())
    probes = _window_probes(history, plan) or _epoch_probes(history, plan)
    return {
        "id": trial.trial_id,
        "number": trial.number,
        "status": trial.status,
        "error": trial.error,
        "hyperparameters": trial.hyperparameters,
        "system": {
            "default": default.as_dict(),
            "probes": probes,
            "chosen": chosen.as_dict() if chosen else None,
            "source": source.value,
            "not_probed": plan.not_probed(history),
            "switches": switches(segments),
            "decisions": trial.decisions,  # at pauses: go on (at which setting) or stop, and why
        },
        "processes": len({s.process or -s.index - 1 for s in segments}),
        # of them, those that were an earlier segment's, kept for the next (reuseProcess)
        "reused_processes": sum(1 for s in segments if s.reused),
        "epochs": len(epochs),
        "segments": len(segments),
        "probe_epochs": sum(
            1 for s in segments if s.role is Role.PROBE and s.epochs and s.window is None
        )
        if probing
        else 0,
        "probe_windows": len(window.window_runs(segments)) if probing else 0,
        "recognition": trial.recognition,
        "profile": next((s.profile for s in segments if s.profile), None),
        "accuracy": epochs[-1].accuracy if epochs and trial.status == "done" else None,
        "time": {
            "total_s": _round(total_s),
            "train_s": _round(train_s),
            "startup_s": _round(max(0.0, total_s - train_s - probe_s)),
            "probe_s": _round(probe_s),
            # start-up by phase, summed over the trial's processes (backends/startup.py)
            "startup_phases_s": startup_phases(segments),
        },
        "energy": {"joules": _round(energy.joules), "source": energy.source},
    }


def startup_phases(segments: list[SegmentRecord]) -> dict[str, float]:
    total: dict[str, float] = {}
    for seg in segments:
        for name, seconds in seg.phases.items():
            total[name] = total.get(name, 0.0) + seconds
    return {name: round(seconds, 3) for name, seconds in total.items()}


def _epoch_probes(history: TrialHistory, plan: TrialPlan) -> list[dict[str, Any]]:
    segments = history.segments
    probes = []
    for seg, p in zip(
        (s for s in segments if s.role is Role.PROBE), plan.probes(history), strict=False
    ):
        epoch = seg.epochs[0] if seg.ok and seg.epochs else None
        entry: dict[str, Any] = {
            "setting": p.setting.as_dict(),
            "epoch": epoch.epoch if epoch else None,
            "how": "new process" if _new_process(seg, segments) else "live",
            "epoch_s": _round(epoch.duration_s if epoch else None),
            "steady_s": _round(p.epoch_s),  # what the choice compared (warm pace)
            "energy_j": _round(p.energy_j),
            "energy_source": p.energy_source,
        }
        if p.error:
            entry["error"] = p.error
        probes.append(entry)
    return probes


def _window_probes(history: TrialHistory, plan: TrialPlan) -> list[dict[str, Any]]:
    """Window probes, one entry per window (its chunks together); the epoch figures are the
    window's pace over a whole epoch, as the choice compared them."""
    runs = window.window_runs(history.segments)
    if not runs:
        return []
    probes = []
    for run, p in zip(runs, plan.probes(history), strict=False):
        entry: dict[str, Any] = {
            "setting": p.setting.as_dict(),
            "epoch": run[-1].window.epoch if run[-1].window else None,
            "how": "window",
            "steady_s": _round(p.epoch_s),
            "energy_j": _round(p.energy_j),
            "energy_source": p.energy_source,
            "window": window.summary(run),
        }
        if p.error:
            entry["error"] = p.error
        probes.append(entry)
    return probes


def switches(segments: list[SegmentRecord]) -> list[dict[str, Any]]:
    """Each change of setting within the trial: live (same process) or restart (a new one),
    with what it cost."""
    out = []
    ran = [s for s in segments if s.ok]
    for before, after in itertools.pairwise(ran):
        if before.setting == after.setting:
            continue
        live = after.process != 0 and after.process == before.process
        entry: dict[str, Any] = {
            "epoch": before.epochs[-1].epoch if before.epochs else None,
            "from": before.setting.as_dict(),
            "to": after.setting.as_dict(),
            "how": ApplyMode.LIVE.value if live else ApplyMode.RESTART.value,
            # live: the pause until the job ran at the new setting; restart: the new
            # process's time outside epochs (its start-up, and its own save at its end)
            "overhead_s": _round(after.switch_s if live else after.startup_s),
        }
        if before.window is not None and not before.epochs:  # after a window, inside an epoch
            entry["epoch"], entry["inside_epoch"] = before.window.epoch, True
        out.append(entry)
    return out


def _new_process(seg: SegmentRecord, segments: list[SegmentRecord]) -> bool:
    earlier = [s for s in segments if s.index < seg.index]
    return not earlier or seg.process == 0 or earlier[-1].process != seg.process


def run_summary(
    state: RunState, trials: list[dict[str, Any]], status: str, meter: str
) -> dict[str, Any]:
    done = [t for t in trials if t["status"] == "done" and t["accuracy"] is not None]
    best = max(done, key=lambda t: t["accuracy"], default=None)
    energy = sum(
        (Energy(t["energy"]["joules"] or 0.0, t["energy"]["source"]) for t in trials), Energy.zero()
    )
    return {
        "run_id": state.run_id,
        "mode": state.mode,
        "status": status,
        "planned_trials": state.planned_trials,
        "energy_meter": meter,
        "trials": trials,
        "best": None
        if best is None
        else {
            "trial": best["id"],
            "accuracy": best["accuracy"],
            "hyperparameters": best["hyperparameters"],
            "system": best["system"]["chosen"],
        },
        "totals": {
            "time_s": _round(sum(t["time"]["total_s"] or 0.0 for t in trials)),
            "energy": {"joules": _round(energy.joules), "source": energy.source},
            "trials_done": len(done),
            "trials_failed": sum(1 for t in trials if t["status"] == "failed"),
        },
    }


def write_results(run_dir: Path, state: RunState, summary: dict[str, Any]) -> None:
    _atomic_write(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    _atomic_write(run_dir / "trials.csv", _trials_csv(summary["trials"]))
    _atomic_write(run_dir / "epochs.csv", _epochs_csv(state))


def _trials_csv(trials: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [
            "trial",
            "status",
            "hyperparameters",
            "chosen",
            "source",
            "epochs",
            "accuracy",
            "total_s",
            "train_s",
            "startup_s",
            "probe_s",
            "energy_j",
            "energy_source",
        ]
    )
    for t in trials:
        chosen = t["system"]["chosen"]
        w.writerow(
            [
                t["id"],
                t["status"],
                json.dumps(t["hyperparameters"], sort_keys=True),
                SystemSetting.of(chosen).label() if chosen else "",
                t["system"]["source"],
                t["epochs"],
                t["accuracy"],
                t["time"]["total_s"],
                t["time"]["train_s"],
                t["time"]["startup_s"],
                t["time"]["probe_s"],
                t["energy"]["joules"],
                t["energy"]["source"],
            ]
        )
    return out.getvalue()


def _epochs_csv(state: RunState) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [
            "trial",
            "segment",
            "role",
            "setting",
            "epoch",
            "duration_s",
            "eval_s",
            "loss",
            "accuracy",
            "energy_j",
            "energy_source",
        ]
    )
    for trial in state.ordered():
        for seg in trial.segments:
            for e in seg.epochs if seg.ok else ():
                w.writerow(
                    [
                        trial.trial_id,
                        seg.index,
                        seg.role.value,
                        seg.setting.label(),
                        e.epoch,
                        _round(e.duration_s),
                        _round(e.eval_s),
                        e.loss,
                        e.accuracy,
                        _round(e.energy.joules),
                        e.energy.source,
                    ]
                )
    return out.getvalue()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
