"""Online replay: tuning jobs arrive as a Poisson stream into a cluster of C slots.

Each job tunes one workload drawn uniformly from the trace, seeded by one of `seeds` seeds (its
hyperparameter draws). Jobs are served first come, first served; one job holds one slot for
its whole tuning. Response time = queueing + tuning. Per strategy: mean and p95 response, mean
wait, total energy, mean best accuracy, and for PipeTune how its recognition fared.

Service times come from the live tuner replayed over the trace (`replay_job`), memoised: a job
is a deterministic function of (workload, seed) for v1, v2 and the oracle, and for PipeTune of
(workload, seed, what recognition answered for each trial). Recognition is the real
`Recognizer`, shared by all jobs and learning online:

* when a job starts, each of its trials is looked up with the trial's profiling-epoch
  observation, whose profile is the workload's recorded profile with run-to-run noise
  (lognormal per counter, `profile_noise` in log units; measured here: 0.1–0.4 between runs
  of one job), so misses and false hits happen as they would;
* a hit runs that trial without probes at the recognised setting (which, on a false hit, is
  another job's setting, and the replay charges what that costs);
* when a job completes, its probed trials are observed (profile + probes), in completion
  order, so a job sees what the cluster had learnt when it started. Hits add nothing.

The offered load is λ·E[S]/C per strategy, with E[S] the mean service time over the memoised
jobs (PipeTune's without recognition: its upper bound). A load ≥ 1 means an unbounded queue:
`check_load` refuses it unless told to go on.
"""

from __future__ import annotations

import dataclasses
import heapq
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipetune.config import TuningConfig
from pipetune.errors import PipeTuneError
from pipetune.probing.selection import ProbeResult
from pipetune.recognition.features import Observation
from pipetune.recognition.model import Recognizer, RecognizerSettings
from pipetune.recognition.service import RecognitionService
from pipetune.records import SystemSetting
from pipetune.replay.runner import Outcome, replay_job
from pipetune.replay.trace import Trace
from pipetune.telemetry.profile import JobProfile

STRATEGIES = ("v1", "v2", "pipetune", "oracle")


class Overload(PipeTuneError):
    """An offered load ≥ 1: the queue would grow without bound."""

    exit_code = 2


@dataclass(frozen=True)
class Job:
    index: int
    arrival_s: float
    workload: str
    seed: int


def poisson_jobs(
    count: int, rate_per_s: float, workloads: list[str], seeds: int, rng: np.random.Generator
) -> list[Job]:
    """`count` jobs with exponential inter-arrival gaps (mean 1/rate)."""
    gaps = rng.exponential(1.0 / rate_per_s, count)
    arrivals = np.cumsum(gaps)
    picks = rng.integers(0, len(workloads), count)
    seed_draws = rng.integers(0, seeds, count)
    return [
        Job(i, float(arrivals[i]), workloads[int(picks[i])], int(seed_draws[i]))
        for i in range(count)
    ]


@dataclass
class _TrialFacts:
    """What a trial's profiling epoch and probes were, from the probing (no-recognition) run."""

    batch_size: int
    epoch_s: float
    samples: int
    energy_j: float | None
    energy_source: str
    probes: tuple[ProbeResult, ...]
    chosen: SystemSetting | None  # what the trial's plan chose from them


class _Scripted(RecognitionService):
    """Answers each trial with a look-up made when the job started; learns nothing itself."""

    def __init__(self, answers: list[dict[str, Any]], batch_parameter: str, job: str) -> None:
        self.path = None
        self.batch_parameter = batch_parameter
        self.job = job
        self.tolerance = 1.0
        self.problem = None
        self.recognizer = None
        self._answers = list(answers)
        self._asked = 0

    @property
    def available(self) -> bool:
        return True

    def lookup(self, obs: Observation | None) -> dict[str, Any]:
        answer = self._answers[self._asked]
        self._asked += 1
        return answer

    def learn(
        self, obs: Observation | None, probes: list[ProbeResult], chosen: SystemSetting | None
    ) -> str:
        return "learnt by the online replay when the job completes"


@dataclass
class Services:
    """Memoised replays of tuning jobs: the service each job gets under each strategy."""

    trace: Trace
    config: TuningConfig
    noise: float = 0.0
    scratch: Path | None = None
    _memo: dict[tuple[Any, ...], Outcome] = field(default_factory=dict)
    _facts: dict[tuple[str, int], list[_TrialFacts | None]] = field(default_factory=dict)
    replays: int = 0

    def fixed(self, strategy: str, workload: str, seed: int) -> Outcome:
        """v1, v2, oracle, and PipeTune with every trial probed."""
        key = (strategy, workload, seed)
        if key not in self._memo:
            self._memo[key] = self._replay(strategy, workload, seed)
        return self._memo[key]

    def pipetune(self, workload: str, seed: int, answers: list[dict[str, Any]]) -> Outcome:
        """PipeTune when recognition answered `answers` (one per trial, in order)."""
        hits = tuple(SystemSetting.of(a["setting"]).label() if a["hit"] else None for a in answers)
        if not any(hits):
            return self.fixed("pipetune", workload, seed)
        key = ("pipetune", workload, seed, hits)
        if key not in self._memo:
            scripted = _Scripted(answers, self.config.recognition.batch_parameter, workload)
            self._memo[key] = self._replay("pipetune", workload, seed, scripted)
        return self._memo[key]

    def trial_facts(self, workload: str, seed: int) -> list[_TrialFacts | None]:
        """Each trial's profiling epoch and probes, from the all-probed PipeTune replay."""
        key = (workload, seed)
        if key not in self._facts:
            probing = self.fixed("pipetune", workload, seed)
            self._facts[key] = [
                _facts(t, first, self.config)
                for t, first in zip(probing.summary["trials"], probing.first_epochs, strict=True)
            ]
        return self._facts[key]

    def _replay(self, strategy: str, workload: str, seed: int, recognition: Any = None) -> Outcome:
        self.replays += 1
        return replay_job(
            self.trace,
            workload,
            self.config,
            strategy,
            seed,
            recognition=recognition,
            noise=self.noise,
            scratch=self.scratch,
        )


def _facts(
    trial: dict[str, Any], first: dict[str, Any] | None, config: TuningConfig
) -> _TrialFacts | None:
    if first is None:
        return None  # the profiling epoch failed: nothing to look up
    latest: dict[str, ProbeResult] = {}  # per setting, the measurement the choice compared
    for p in trial["system"]["probes"]:
        setting = SystemSetting.of(p["setting"])
        latest[setting.label()] = ProbeResult(
            setting,
            p.get("steady_s") or p["epoch_s"],
            p["energy_j"],
            p["energy_source"],
            p.get("error"),
        )
    probes = tuple(latest.values())
    return _TrialFacts(
        batch_size=int(trial["hyperparameters"][config.recognition.batch_parameter]),
        epoch_s=first["duration_s"],
        samples=first["samples"],
        energy_j=first["energy_j"],
        energy_source=first["energy_source"],
        probes=probes,
        chosen=SystemSetting.of(chosen) if (chosen := trial["system"]["chosen"]) else None,
    )


@dataclass
class StrategyResult:
    strategy: str
    jobs: int
    mean_response_s: float
    p95_response_s: float
    mean_wait_s: float
    mean_service_s: float
    offered_load: float
    energy_j: float
    energy_source: str
    mean_best_accuracy: float | None
    trials: int = 0
    recognised: int = 0
    false_hits: int = 0
    probed: int = 0

    def row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def mean_service(services: Services, strategy: str, workloads: list[str], seeds: int) -> float:
    """E[S] over every (workload, seed) a job can draw (uniform draws: a plain mean)."""
    return statistics.fmean(
        services.fixed(strategy, w, s).tuning_s for w in workloads for s in range(seeds)
    )


def check_load(loads: dict[str, float], allow: bool, warn: Callable[[str], None]) -> None:
    over = {s: v for s, v in loads.items() if v >= 1.0}
    if not over:
        return
    shown = ", ".join(f"{s} {v:.2f}" for s, v in over.items())
    message = (
        f"offered load >= 1 ({shown}): arrivals outpace {'its' if len(over) == 1 else 'their'} "
        "service, so the queue and response times grow without bound; lower --load or --rate, "
        "or add --slots"
    )
    if not allow:
        raise Overload(message)
    warn(f"warning: {message} (going on: --allow-overload)")


def simulate(
    strategy: str,
    jobs: list[Job],
    services: Services,
    slots: int,
    offered_load: float,
    *,
    profile_noise: float = 0.2,
    tolerance: float = 1.0,
    refit_every: int = 20,
    seed: int = 0,
) -> StrategyResult:
    """FCFS over `slots` identical slots; recognition learns online for PipeTune."""
    recognizer = Recognizer(
        services.config.probing.objective,
        RecognizerSettings(refit_every=refit_every, min_observations=2),
    )
    rng = np.random.default_rng([seed, 1])
    recognition = _OnlineRecognition(services, recognizer, rng, profile_noise, tolerance)
    free = [0.0] * slots  # when each slot is next free (a heap)
    tally = _Tally()
    for job in jobs:
        start = max(job.arrival_s, free[0])
        if strategy == "pipetune":
            result = recognition.serve(job, start)
        else:
            result = services.fixed(strategy, job.workload, job.seed)
        heapq.heapreplace(free, tally.add(job, start, result))
    return StrategyResult(
        strategy=strategy,
        jobs=len(jobs),
        mean_response_s=statistics.fmean(tally.responses),
        p95_response_s=float(np.percentile(tally.responses, 95)),
        mean_wait_s=statistics.fmean(tally.waits),
        mean_service_s=statistics.fmean(tally.service_times),
        offered_load=offered_load,
        energy_j=tally.energy,
        energy_source=",".join(sorted(tally.sources)),
        mean_best_accuracy=statistics.fmean(tally.accuracies) if tally.accuracies else None,
        trials=recognition.trials,
        recognised=recognition.recognised,
        false_hits=recognition.false_hits,
        probed=recognition.probed,
    )


@dataclass
class _Tally:
    """What the served jobs add up to."""

    responses: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    service_times: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    energy: float = 0.0
    sources: set[str] = field(default_factory=set)

    def add(self, job: Job, start: float, result: Outcome) -> float:
        """Count a job that started at `start`; returns when it ends."""
        end = start + result.tuning_s
        self.responses.append(end - job.arrival_s)
        self.waits.append(start - job.arrival_s)
        self.service_times.append(result.tuning_s)
        self.energy += result.energy_j
        self.sources.add(result.energy_source)
        if result.best_accuracy is not None:
            self.accuracies.append(result.best_accuracy)
        return end


@dataclass
class _OnlineRecognition:
    """PipeTune's recognition, shared by every job: a job's trials are looked up when it starts,
    and its probed trials are learnt when it completes (`learning`: a heap of completion time,
    job index and observations, applied once a later job starts after them)."""

    services: Services
    recognizer: Recognizer
    rng: np.random.Generator
    profile_noise: float
    tolerance: float
    learning: list[tuple[float, int, list[Observation]]] = field(default_factory=list)
    trials: int = 0
    recognised: int = 0
    false_hits: int = 0
    probed: int = 0

    def serve(self, job: Job, start: float) -> Outcome:
        """The job's replay given what recognition knows at `start`."""
        while self.learning and self.learning[0][0] <= start:
            for finished in heapq.heappop(self.learning)[2]:
                self.recognizer.observe(finished)
        facts = self.services.trial_facts(job.workload, job.seed)
        profile = self.services.trace.profile(job.workload)
        observations = [
            _observation(f, profile, job.workload, self.rng, self.profile_noise) for f in facts
        ]
        answers = [_lookup(self.recognizer, obs, self.tolerance) for obs in observations]
        result = self.services.pipetune(job.workload, job.seed, answers)
        self.trials += len(answers)
        learnt: list[Observation] = []
        for answer, obs, fact in zip(answers, observations, facts, strict=True):
            if answer["hit"]:
                self.recognised += 1
                self.false_hits += answer.get("learnt_from") != job.workload
            elif obs is not None and fact is not None and fact.probes:
                self.probed += 1
                learnt.append(dataclasses.replace(obs, probes=fact.probes, chosen=fact.chosen))
        if learnt:
            heapq.heappush(self.learning, (start + result.tuning_s, job.index, learnt))
        return result


def _observation(
    facts: _TrialFacts | None,
    profile: JobProfile | None,
    workload: str,
    rng: np.random.Generator,
    noise: float,
) -> Observation | None:
    if profile is None or facts is None:
        return None
    names = list(profile.features)
    factors = np.exp(rng.normal(0.0, noise, len(names))) if noise > 0 else np.ones(len(names))
    noisy = dataclasses.replace(
        profile,
        features={n: float(profile.features[n] * f) for n, f in zip(names, factors, strict=True)},
    )
    return Observation(
        profile=noisy,
        batch_size=facts.batch_size,
        epoch_s=facts.epoch_s,
        samples=max(1, facts.samples),
        energy_j=facts.energy_j,
        energy_source=facts.energy_source,
        job=workload,
    )


def _lookup(recognizer: Recognizer, obs: Observation | None, tolerance: float) -> dict[str, Any]:
    if obs is None:
        return {"hit": False, "reason": "the trace has no profile for this workload"}
    return recognizer.lookup(obs, tolerance).to_dict()
