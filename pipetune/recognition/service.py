"""The tuner's side of recognition: load the model once per run, look up a trial after its
profiling epoch, learn from it when it ends, save atomically. Every failure becomes a reason
to probe as usual, never a crashed run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pipetune.config_recognition import RecognitionConfig
from pipetune.errors import PipeTuneError
from pipetune.probing.objective import Objective
from pipetune.probing.selection import ProbeResult
from pipetune.recognition.features import Observation
from pipetune.recognition.model import Recognizer, RecognizerSettings
from pipetune.recognition.persistence import load, save
from pipetune.records import SegmentRecord, SystemSetting


class RecognitionService:
    def __init__(self, config: RecognitionConfig, objective: Objective, job: str) -> None:
        self.path: Path | None = config.path
        self.batch_parameter = config.batch_parameter
        self.job = job
        self.tolerance = config.tolerance
        self.problem: str | None = None  # why recognition cannot be used in this run
        self.recognizer: Recognizer | None = None
        settings = RecognizerSettings(
            k=config.k,
            refit_every=config.refit_every,
            min_observations=config.min_observations,
            nearest_batch=config.nearest_batch,
        )
        try:
            self.recognizer = load(self.path, objective, settings)
        except PipeTuneError as exc:
            self.problem = f"recognition model at {self.path} is unusable ({exc}); probing instead"

    @classmethod
    def in_memory(
        cls, recognizer: Recognizer, batch_parameter: str, job: str, tolerance: float = 1.0
    ) -> RecognitionService:
        """A service over a recognizer held by the caller (replays): nothing is read or saved."""
        service = cls.__new__(cls)
        service.path = None
        service.batch_parameter = batch_parameter
        service.job = job
        service.tolerance = tolerance
        service.problem = None
        service.recognizer = recognizer
        return service

    @property
    def available(self) -> bool:
        """Whether a look-up can hit now (a usable, fitted model)."""
        return self.recognizer is not None and self.recognizer.fitted

    def observation(
        self, hyperparameters: dict[str, Any], first: SegmentRecord
    ) -> Observation | None:
        """The profiling epoch as an observation, or None when it cannot be one."""
        if not first.ok or not first.profile or not first.epochs:
            return None
        from pipetune.telemetry.profile import JobProfile

        epoch = first.epochs[0]
        try:
            return Observation(
                profile=JobProfile.from_dict(first.profile),
                batch_size=int(hyperparameters[self.batch_parameter]),
                epoch_s=epoch.duration_s,
                samples=epoch.samples,
                energy_j=epoch.energy.joules,
                energy_source=epoch.energy.source,
                job=self.job,
            )
        except (PipeTuneError, KeyError, TypeError, ValueError):
            return None

    def lookup(self, obs: Observation | None) -> dict[str, Any]:
        """A journal-ready answer: {"hit": bool, "reason": ..., and the match when there is one}."""
        if self.recognizer is None:
            return {"hit": False, "reason": self.problem}
        if obs is None:
            return {"hit": False, "reason": "the profiling epoch has no usable profile"}
        try:
            return self.recognizer.lookup(obs, self.tolerance).to_dict()
        except PipeTuneError as exc:
            return {"hit": False, "reason": f"cannot compare this profile with the model: {exc}"}

    def learn(
        self, obs: Observation | None, probes: list[ProbeResult], chosen: SystemSetting | None
    ) -> str:
        """Add the trial, its probes and the setting its plan chose from them, to the model
        and save it; the note says what happened."""
        if self.recognizer is None or obs is None:
            return self.problem or "nothing to learn: no usable profile"
        try:
            learnt = dataclasses.replace(obs, probes=tuple(probes), chosen=chosen)
            note = self.recognizer.observe(learnt)
            if self.path is not None:
                save(self.recognizer, self.path)
        except (PipeTuneError, OSError) as exc:
            return f"not learnt: {exc}"
        return note
