"""summary.json as readable tables: the run, its trials, and each trial's probes, switches,
decisions, candidates left out and start-up by phase. Text only; html_page lays them out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipetune.report.tradeoff import label_of


@dataclass(frozen=True)
class Table:
    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]


def num(value: Any, fmt: str = ",.1f") -> str:
    """A number for a table; '–' for a missing one."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "–" if value is None else str(value)
    return format(value, fmt)


def energy(e: dict[str, Any] | None) -> str:
    """Joules with their source, always."""
    if not e:
        return "–"
    return f"{num(e.get('joules'), ',.0f')} J ({e.get('source', '?')})"


def run_table(summary: dict[str, Any]) -> Table:
    totals = summary["totals"]
    best = summary.get("best")
    planned = summary.get("planned_trials", len(summary["trials"]))
    rows = [
        ("run", summary["run_id"]),
        ("mode", summary["mode"]),
        ("status", summary["status"]),
        (
            "trials",
            f"{totals.get('trials_done', '?')} done, {totals.get('trials_failed', 0)} "
            f"failed, of {planned} planned",
        ),
        ("tuning time", f"{num(totals['time_s'])} s (every trial's segments)"),
        ("energy", energy(totals["energy"])),
        ("energy meter", str(summary.get("energy_meter", "?"))),
    ]
    if best:
        rows.append(
            (
                "best trial",
                f"{best.get('trial')}: accuracy {num(best.get('accuracy'), '.4f')}, "
                f"{_hyper(best.get('hyperparameters') or {})}, at {label_of(best.get('system'))}",
            )
        )
    overhead = (summary.get("overhead") or {}).get("tuner_cpu_s")
    if overhead is not None:
        rows.append(("tuner's own CPU", f"{num(overhead, '.2f')} s"))
    return Table("Run", ("", ""), [(str(k), str(v)) for k, v in rows])


TRIAL_HEADER = (
    "trial",
    "status",
    "accuracy",
    "hyperparameters",
    "chosen setting",
    "from",
    "epochs",
    "processes",
    "total s",
    "training s",
    "probe s",
    "start-up s",
    "energy",
)


def trials_table(summary: dict[str, Any]) -> Table:
    rows = []
    for t in summary["trials"]:
        time = t["time"]
        status = t["status"] if not t.get("error") else f"{t['status']}: {t['error']}"
        rows.append(
            (
                t["id"],
                status,
                num(t["accuracy"], ".4f"),
                _hyper(t["hyperparameters"]),
                label_of(t["system"]["chosen"]),
                str(t["system"]["source"]),
                num(t.get("epochs"), "d"),
                num(t.get("processes"), "d"),
                num(time["total_s"]),
                num(time.get("train_s")),
                num(time.get("probe_s")),
                num(time.get("startup_s")),
                energy(t["energy"]),
            )
        )
    return Table("Trials", TRIAL_HEADER, rows)


def trial_tables(trial: dict[str, Any]) -> list[Table]:
    """The details of one trial that summary.json holds; empty sections left out."""
    system = trial["system"]
    tables = [
        _probes(system.get("probes") or []),
        Table(
            "Switches of setting",
            ("after epoch", "from", "to", "how", "overhead s"),
            [
                (
                    _epoch(s),
                    label_of(s.get("from")),
                    label_of(s.get("to")),
                    str(s.get("how")),
                    num(s.get("overhead_s"), ".2f"),
                )
                for s in system.get("switches") or []
            ],
        ),
        Table(
            "Decisions at pauses",
            ("after segment", "go on", "at", "why"),
            [
                (
                    str(d.get("segment")),
                    "yes" if d.get("go_on") else "stop",
                    label_of(d.get("to")),
                    str(d.get("why", "")),
                )
                for d in system.get("decisions") or []
            ],
        ),
        Table(
            "Not probed",
            ("setting", "why"),
            [(str(n.get("setting")), str(n.get("why"))) for n in system.get("not_probed") or []],
        ),
        Table(
            "Start-up by phase, all its processes",
            ("phase", "s"),
            [
                (name, num(s, ".2f"))
                for name, s in (trial["time"].get("startup_phases_s") or {}).items()
            ],
        ),
    ]
    recognition = trial.get("recognition")
    if recognition:
        rows = [
            (str(k), json.dumps(v) if not isinstance(v, str) else v) for k, v in recognition.items()
        ]
        tables.append(Table("Recognition", ("", ""), rows))
    return [t for t in tables if t.rows]


PROBE_HEADER = (
    "setting",
    "how",
    "epoch",
    "epoch s",
    "compared s",
    "energy",
    "window",
    "error",
)


def _probes(probes: list[dict[str, Any]]) -> Table:
    rows = []
    for p in probes:
        w = p.get("window") or {}
        window = (
            f"{w.get('iterations')} it (+{w.get('warmup_iterations')} warm-up) of "
            f"{w.get('epoch_iterations')}, ±{num((w.get('rel_error') or 0) * 100, '.0f')} %"
            if w
            else ""
        )
        joules = {"joules": p.get("energy_j"), "source": p.get("energy_source", "?")}
        rows.append(
            (
                label_of(p.get("setting")),
                str(p.get("how", "")),
                num(p.get("epoch"), "d"),
                num(p.get("epoch_s"), ".2f"),
                num(p.get("steady_s"), ".2f"),
                energy(joules),
                window,
                str(p.get("error") or ""),
            )
        )
    return Table("Probes", PROBE_HEADER, rows)


def _epoch(switch: dict[str, Any]) -> str:
    inside = " (inside it)" if switch.get("inside_epoch") else ""
    return f"{switch.get('epoch')}{inside}"


def _hyper(hyper: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in hyper.items()
    )
