"""Synthetic traces with the structure of real ones, for tests and for exercising the tuner at
scale without Spark. Deterministic for a given seed; every row is marked `synthetic`.

Model (all factors drawn per seed):
  * each workload has a base epoch time (lognormal around 60 s) and a base power (100–250 W);
  * each (workload, setting) has a speed factor, 1 for the first (default) setting and
    lognormal(0, 0.3) for the others, so some settings beat the default and some do not;
    faster settings draw more power (power ∝ speed^0.6), so time and energy disagree;
  * each (workload, config) has a time factor (batch size) and an accuracy curve
    a_max·(1 − e^(−r·epoch)) rising to a plateau, independent of the setting but for a little
    per-row noise; loss falls as accuracy rises;
  * energy = (training + validation time) × power; start-up is per (workload, setting);
  * each workload has a distinct profile of the counters a real software-event perf+proc
    profile has (a "perf+proc" JobProfile);
  * `live` is "cores" when the settings have a parameter named cores (it is switched live, as
    PipeTune does), else ""; `switch_s`, the cost of a live switch into a setting, is per
    (workload, setting): 0.3 s × uniform(0.5, 1.5) when something is live, else 0.0;
  * `steady_s` (the warm pace): epoch 1 of every group pays JIT warm-up, so its steady_s is its
    duration × a factor uniform(0.6, 0.9) per (workload, setting); later epochs are warm, their
    steady_s is their duration. (Durations themselves carry no warm-up term.) These last draws
    come after all others, so the other columns are those of a v2 trace with the same seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipetune.records import SystemSetting
from pipetune.replay.trace import COLUMNS, Trace, canonical_config
from pipetune.telemetry.profile import JobProfile, ProfileSource

ENERGY_SOURCE = "synthetic"
_BATCH_SIZES = (32, 64, 128, 256)
_SAMPLE_COUNTS = (10_000, 50_000, 60_000, 120_000)
_FEATURES = {  # name → (log-mean, log-spread across workloads): the counters a real
    # perf+proc profile has on a machine without hardware events (see bench/results)
    "context-switches": (8.5, 0.8),
    "cpu-migrations": (5.0, 0.8),
    "minor-faults": (9.5, 0.8),
    "page-faults": (9.5, 0.8),
    "task-clock": (7.6, 0.3),
    "proc.cpu_user_s": (0.4, 0.5),
    "proc.cpu_system_s": (-1.5, 0.6),
    "proc.ctx_voluntary": (7.0, 0.8),
    "proc.ctx_involuntary": (5.5, 0.8),
    "proc.read_chars": (13.0, 1.0),
    "proc.write_chars": (11.0, 1.0),
    "proc.read_bytes": (10.0, 1.5),
}


def synthetic_trace(
    workloads: int, configs: int, settings: list[SystemSetting], epochs: int, seed: int
) -> Trace:
    """A full trace: every workload × config × setting × epochs 1..`epochs`.

    The first setting plays the default (speed factor 1). Raises ValueError for empty shapes or
    repeated settings.
    """
    labels = [s.label() for s in settings]
    if workloads < 1 or configs < 1 or epochs < 1 or not settings:
        raise ValueError("synthetic_trace needs at least one workload, config, setting and epoch")
    if len(set(labels)) != len(labels):
        raise ValueError(f"synthetic_trace: repeated settings in {labels}")
    rng = np.random.default_rng(seed)
    n_w, n_c, n_s, n_e = workloads, configs, len(settings), epochs
    width = len(str(n_w - 1))
    names = np.array([f"synthetic-{i:0{width}d}" for i in range(n_w)], dtype=object)
    f = _draw_factors(rng, n_w, n_c, n_s)
    config_json = _config_json(f.batch, f.learning_rate)

    w_i, c_i, s_i, e_i = (a.ravel() for a in np.indices((n_w, n_c, n_s, n_e)))
    epoch = e_i + 1
    measured = _draw_epochs(rng, f, w_i, c_i, s_i, epoch)
    profiles = np.array([_profile(rng, f.base_time[w]) for w in range(n_w)], dtype=object)
    profile = np.full(w_i.size, None, dtype=object)
    profile[epoch == 1] = profiles[w_i[epoch == 1]]
    # Drawn last (see the module doc): the columns above do not depend on them.
    live = "cores" if any(s.get("cores") is not None for s in settings) else ""
    switch = 0.3 * rng.uniform(0.5, 1.5, (n_w, n_s)) * (1.0 if live else 0.0)
    warm_pace = rng.uniform(0.6, 0.9, (n_w, n_s))
    steady = measured["duration_s"] * np.where(epoch == 1, warm_pace[w_i, s_i], 1.0)
    frame = pd.DataFrame(
        {
            "workload": names[w_i],
            "config": config_json[w_i, c_i],
            "setting": np.array(labels, dtype=object)[s_i],
            "epoch": epoch.astype("int64"),
            **measured,
            "energy_source": np.full(w_i.size, ENERGY_SOURCE, dtype=object),
            "steady_s": steady,
            "samples": f.samples[w_i],
            "startup_s": f.startup[w_i, s_i],
            "switch_s": switch[w_i, s_i],
            "live": np.full(w_i.size, live, dtype=object),
            "profile": profile,
            "synthetic": np.ones(w_i.size, dtype=bool),
        },
        columns=list(COLUMNS),
    )
    return Trace(frame)


@dataclass(frozen=True)
class _Factors:
    """The draws that rows share: per workload (`base_*`, `samples`), per (workload, setting)
    (`speed`, `power`, `startup`) and per (workload, config) (the rest)."""

    base_time: np.ndarray
    speed: np.ndarray
    power: np.ndarray
    startup: np.ndarray
    samples: np.ndarray
    batch: np.ndarray
    learning_rate: np.ndarray
    config_time: np.ndarray
    plateau: np.ndarray
    rate: np.ndarray


def _draw_factors(rng: np.random.Generator, n_w: int, n_c: int, n_s: int) -> _Factors:
    base_time = 60.0 * np.exp(rng.normal(0.0, 0.5, n_w))
    base_power = rng.uniform(100.0, 250.0, n_w)
    speed = np.exp(rng.normal(0.0, 0.3, (n_w, n_s)))
    speed[:, 0] = 1.0
    power = base_power[:, None] * speed**0.6 * np.exp(rng.normal(0.0, 0.05, (n_w, n_s)))
    startup = rng.uniform(8.0, 30.0, (n_w, n_s))
    samples = rng.choice(_SAMPLE_COUNTS, n_w).astype("int64")
    batch = rng.choice(_BATCH_SIZES, (n_w, n_c))
    # Stratified learning rates: distinct configs within a workload by construction.
    strata = (np.arange(n_c)[None, :] + rng.uniform(0.0, 1.0, (n_w, n_c))) / n_c
    learning_rate = 10.0 ** (-4.0 + 3.0 * strata)
    config_time = (64.0 / batch) ** 0.3 * np.exp(rng.normal(0.0, 0.1, (n_w, n_c)))
    plateau = rng.uniform(0.55, 0.99, (n_w, n_c))
    rate = rng.uniform(0.2, 1.0, (n_w, n_c))
    return _Factors(
        base_time, speed, power, startup, samples, batch, learning_rate, config_time, plateau, rate
    )


def _config_json(batch: np.ndarray, learning_rate: np.ndarray) -> np.ndarray:
    """The `config` cell of each (workload, config)."""
    n_w, n_c = batch.shape
    return np.array(
        [
            [
                canonical_config(
                    {
                        "batch_size": int(batch[w, c]),
                        "learning_rate": float(f"{learning_rate[w, c]:.6g}"),
                    }
                )
                for c in range(n_c)
            ]
            for w in range(n_w)
        ],
        dtype=object,
    )


def _draw_epochs(
    rng: np.random.Generator,
    f: _Factors,
    w_i: np.ndarray,
    c_i: np.ndarray,
    s_i: np.ndarray,
    epoch: np.ndarray,
) -> dict[str, np.ndarray]:
    """Each row's time, energy, accuracy and loss columns (rows given by their indices)."""
    jitter = np.exp(rng.normal(0.0, 0.03, w_i.size))
    duration = f.base_time[w_i] * f.config_time[w_i, c_i] / f.speed[w_i, s_i] * jitter
    eval_s = duration * rng.uniform(0.05, 0.15, w_i.size)
    energy = (duration + eval_s) * f.power[w_i, s_i]
    accuracy = f.plateau[w_i, c_i] * (1.0 - np.exp(-f.rate[w_i, c_i] * epoch))
    accuracy = np.clip(accuracy + rng.normal(0.0, 0.003, w_i.size), 0.0, 1.0)
    loss = -np.log(np.clip(accuracy, 1e-3, 1.0)) + rng.uniform(0.0, 0.05, w_i.size)
    return {
        "duration_s": duration,
        "eval_s": eval_s,
        "energy_j": energy,
        "accuracy": accuracy,
        "loss": loss,
    }


def _profile(rng: np.random.Generator, window_s: float) -> str:
    features = {name: float(np.exp(rng.normal(mu, sd))) for name, (mu, sd) in _FEATURES.items()}
    profile = JobProfile(features, ProfileSource.PERF_PROC, window_s)
    return json.dumps(profile.to_dict(), sort_keys=True, separators=(",", ":"))
