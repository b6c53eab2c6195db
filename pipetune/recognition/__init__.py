"""Recognising recurring jobs from their first epoch's profile, to skip probing.

The tuner's side: `load` a `Recognizer` (an empty one when there is no file yet), `lookup` the
profiling epoch's `Observation` (a hit carries the best known setting; a miss says why),
`observe` the observation once its probes are done, and `save` the recognizer. Every error is
a `PipeTuneError`: `FeatureMismatch` from a look-up, `ModelUnusable` from `load`; both mean
"probe as usual, and say why".
"""

from __future__ import annotations

from pipetune.recognition.features import (
    DEFAULT_EXCLUDED,
    FeatureMismatch,
    FeatureSpec,
    InvalidObservation,
    Observation,
)
from pipetune.recognition.knowledge import KnowledgeEntry, KnowledgeTable
from pipetune.recognition.model import Recognition, Recognizer, RecognizerSettings
from pipetune.recognition.persistence import ModelUnusable, load, save

__all__ = [
    "DEFAULT_EXCLUDED",
    "FeatureMismatch",
    "FeatureSpec",
    "InvalidObservation",
    "KnowledgeEntry",
    "KnowledgeTable",
    "ModelUnusable",
    "Observation",
    "Recognition",
    "Recognizer",
    "RecognizerSettings",
    "load",
    "save",
]
