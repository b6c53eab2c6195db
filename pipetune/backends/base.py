"""The backend interface: run one segment, report each epoch as it finishes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from pipetune.records import EpochReport, Pause, SegmentRequest, SegmentResult

EpochCallback = Callable[[EpochReport], None]
DecideCallback = Callable[[Pause], bool]  # True: go on in the same process


class Backend(ABC):
    """Runs segments. Called by the tuner once per segment, sequentially."""

    @abstractmethod
    def run_segment(
        self,
        request: SegmentRequest,
        on_epoch: EpochCallback,
        decide: DecideCallback | None = None,
    ) -> SegmentResult:
        """Train `request.epochs` epochs from `request.checkpoint_dir` under `request.setting`.

        Calls `on_epoch` as each epoch finishes. With `request.decide_after` = k (0 < k <
        epochs), pauses after k epochs and calls `decide` (none: go on); on False the segment
        ends there, saved, with k epochs (`SegmentResult.paused` says which). Raises
        `SegmentFailed` when the segment does not finish cleanly; the checkpoint is then left
        as it was before the segment.
        """

    def stop(self) -> None:  # noqa: B027 - optional hook, default is nothing to stop
        """Stop whatever is running (Ctrl-C); the default has nothing to stop."""
