"""What one process keeps between the segments it runs (pipetune/contract.py, "Reuse").

A plain process may run several segments when the launcher hands it the next one instead of
starting a new process. It keeps only the data, when the next segment asks for the same
data; model, optimizer, seeds, checkpoint and torch's thread count are the segment's own and
made afresh, as a fresh process would make them. A job of several processes (TorchDistributor)
runs one segment: its launcher starts the processes anew for each.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable
from pathlib import Path

from pipetune import contract

from .workload import Shard


class Session:
    def __init__(self, next_path: Path | None, app: str) -> None:
        self.next_path = next_path  # set when the launcher may reuse this process
        self.app = app  # names it in messages
        self.segments = 0  # run to their end in this process
        self.handed_over_at = 0.0  # unix time the launcher sent the segment in progress
        self._key: Hashable = None
        self._shard: Shard | None = None

    @property
    def reusable(self) -> bool:
        return self.next_path is not None

    def shard(self, key: Hashable, build: Callable[[], Shard]) -> tuple[Shard, bool]:
        """The data made from `key` (what makes it), and whether it was kept from an earlier
        segment."""
        if self._shard is not None and self._key == key:
            return self._shard, True
        self._shard, self._key = None, None  # let the old one go before making the new one
        self._shard, self._key = build(), key
        return self._shard, False

    def await_next(self, timeout_s: float) -> list[str] | None:
        """After a segment's `end`: the next segment's app flags, or None to exit."""
        self.segments += 1
        if self.next_path is None:
            return None
        handover = contract.await_next(self.next_path, self.segments, timeout_s)
        if handover is None:
            print(f"{self.app}: no next segment in {timeout_s:g} s; exiting", file=sys.stderr)
            return None
        if handover.exit:
            return None
        self.handed_over_at = handover.sent_at
        return list(handover.argv)
