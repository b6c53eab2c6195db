"""The backend interface: run one segment, report each epoch as it finishes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from pipetune.records import (
    Decision,
    EpochReport,
    Pause,
    Role,
    SegmentRequest,
    SegmentResult,
    SystemSetting,
)

# each epoch as it finishes, with the setting and role of the stint it belongs to
EpochCallback = Callable[[EpochReport, SystemSetting, Role], None]
# at a pause: stop there (Decision.setting None) or go on, at this or another live setting
DecideCallback = Callable[[Pause], Decision]


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

        Launches at `request.launched_as` and puts `request.setting` in force before the first
        epoch. Calls `on_epoch` as each epoch finishes. With `request.decide_after` = k (0 < k
        < epochs), pauses after k epochs and calls `decide` (none: go on): a `Decision` to stop
        there (saved), or to go on, maybe at another setting reachable live, pausing again
        after its `pause_after` epochs. Each run of epochs at one setting is a `Stint` of the
        result. Raises `SegmentFailed` when the segment does not finish cleanly; the
        checkpoint is then left as it was before the segment.
        """

    def stop(self) -> None:  # noqa: B027 - optional hook, default is nothing to stop
        """Stop whatever is running (Ctrl-C); the default has nothing to stop."""

    def close(self) -> None:  # noqa: B027 - optional hook, default is nothing kept
        """Let go of what is kept between segments (an idle process); the run is over."""
