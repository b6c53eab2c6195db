"""Synthetic but realistic job profiles for the recognition tests (imported by the others).

Three jobs with clearly different counter-rate vectors, ±5 % noise per run, and a far-away job
that is never trained on. Rates are per second, of the order a BigDL epoch on a few cores shows.
"""

from __future__ import annotations

import numpy as np

from pipetune.probing.objective import Objective
from pipetune.probing.selection import ProbeResult
from pipetune.recognition import Observation
from pipetune.records import SystemSetting
from pipetune.telemetry.profile import JobProfile

BASE: dict[str, float] = {
    "instructions": 5e9,
    "cycles": 4e9,
    "cache-references": 1.2e8,
    "cache-misses": 1.5e7,
    "branches": 9e8,
    "branch-misses": 1.1e7,
    "bus-cycles": 1e8,
    "LLC-loads": 4e7,
    "LLC-load-misses": 8e6,
    "L1-dcache-loads": 2e9,
    "L1-dcache-load-misses": 1e8,
    "dTLB-load-misses": 2e6,
    "iTLB-load-misses": 3e5,
    "task-clock": 16000.0,  # system-wide: 16 CPUs × 1000 msec/s, whatever runs (excluded)
    "context-switches": 3e3,
    "cpu-migrations": 60.0,
    "page-faults": 1.5e3,
    "proc.cpu_user_s": 1.8,
    "proc.cpu_system_s": 0.12,
    "proc.minor_faults": 1.4e3,
    "proc.major_faults": 0.0,  # constant across every job: must be harmless
    "proc.ctx_voluntary": 600.0,
    "proc.ctx_involuntary": 40.0,
    "proc.read_bytes": 1e6,
    "proc.write_bytes": 2e5,
    "proc.read_chars": 3e6,
    "proc.write_chars": 4e5,
    "proc.threads": 110.0,  # a level (excluded)
}

# Per job: multiplier per feature (log-uniform), mean power (W) and seconds per sample at batch 64.
_rng = np.random.default_rng(20240601)
JOBS: dict[str, tuple[dict[str, float], float, float]] = {}
for _name, _spread, _power, _sps in (
    ("lenet5-mnist", 0.0, 140.0, 0.0020),
    ("lstm-news20", 1.2, 230.0, 0.0120),
    ("cnn-news20", 1.2, 95.0, 0.0006),
    ("far-away", 4.5, 600.0, 0.3000),
):
    _factors = {
        k: 1.0 if k == "proc.major_faults" else float(np.exp(_rng.uniform(-_spread, _spread)))
        for k in BASE
    }
    JOBS[_name] = (_factors, _power, _sps)
KNOWN = ("lenet5-mnist", "lstm-news20", "cnn-news20")
FAR = "far-away"

DEFAULT = {"cores": "2", "memory": "2g"}
CANDIDATES = (
    DEFAULT,
    {"cores": "1", "memory": "2g"},
    {"cores": "4", "memory": "2g"},
    {"cores": "2", "memory": "8g"},
)
BEST = {
    "lenet5-mnist": {"cores": "4", "memory": "2g"},
    "lstm-news20": {"cores": "2", "memory": "8g"},
    "cnn-news20": {"cores": "1", "memory": "2g"},
    "far-away": DEFAULT,
}
DURATION = Objective({"duration": 1.0})
SAMPLES = 60000


def profile(
    job: str,
    rng: np.random.Generator,
    noise: float = 0.05,
    extra: dict[str, float] | None = None,
    drop: tuple[str, ...] = (),
) -> JobProfile:
    factors, _, _ = JOBS[job]
    features = {
        k: v * factors[k] * float(rng.uniform(1 - noise, 1 + noise))
        for k, v in BASE.items()
        if k not in drop
    }
    features.update(extra or {})
    return JobProfile(features, "perf+proc", 30.0)


def probes(best: dict[str, str], epoch_s: float, energy_per_s: float) -> tuple[ProbeResult, ...]:
    """The default first, then the candidates; `best` is fastest and the default slowest."""
    out = []
    for setting in CANDIDATES:
        t = epoch_s * (0.6 if setting == best else 1.0 if setting == DEFAULT else 0.8)
        out.append(ProbeResult(SystemSetting.of(setting), t, t * energy_per_s, "rapl"))
    return tuple(out)


def observation(
    job: str,
    rng: np.random.Generator,
    batch: int = 64,
    probed: bool = True,
    best: dict[str, str] | None = None,
    energy_source: str = "rapl",
    **profile_args: object,
) -> Observation:
    _, power, sps = JOBS[job]
    per_sample = sps * (64 / batch) ** 0.3 * float(rng.uniform(0.95, 1.05))
    epoch_s = per_sample * SAMPLES
    energy = power * float(rng.uniform(0.95, 1.05)) * epoch_s
    return Observation(
        profile=profile(job, rng, **profile_args),
        batch_size=batch,
        epoch_s=epoch_s,
        samples=SAMPLES,
        energy_j=energy,
        energy_source=energy_source,
        probes=probes(best or BEST[job], epoch_s, power) if probed else (),
        job=job,
    )


def training_set(
    rng: np.random.Generator, runs: int = 6, batches: tuple[int, ...] = (64,)
) -> list[Observation]:
    """`runs` probed runs of each known job, interleaved as a shared cluster would see them."""
    return [
        observation(job, rng, batch=batches[i % len(batches)]) for i in range(runs) for job in KNOWN
    ]


def test_jobs_are_far_apart_and_runs_of_one_job_close():
    rng = np.random.default_rng(0)

    def logged(job: str) -> np.ndarray:
        return np.log1p(np.array(list(profile(job, rng).features.values())))

    a1, a2, b, far = (
        logged("lenet5-mnist"),
        logged("lenet5-mnist"),
        logged("lstm-news20"),
        logged(FAR),
    )
    assert np.abs(a1 - a2).max() < 0.11
    assert np.linalg.norm(a1 - b) > 10 * np.linalg.norm(a1 - a2)
    assert np.linalg.norm(a1 - far) > 3 * np.linalg.norm(a1 - b)
