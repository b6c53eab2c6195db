"""How a TorchDistributor job ended, read from the events that pass through the launcher.

pyspark 3.5's torchrun wrapper (`pyspark.ml.torch.torch_run_process_wrapper`) exits 0 whatever
torchrun's exit status, so `TorchDistributor.run` on a script returns normally when the
training processes failed. The launcher therefore passes its stdout through `EventWatch`: the
job succeeded when rank 0's `end` came by, and failed when an `error` did or nothing did.
"""

from __future__ import annotations

import io
import threading
from typing import IO

from pipetune import contract


class EventWatch(io.TextIOBase):
    """A text stream that writes through to `out` (flushed at each line) and notes the app's
    `end` and `error` events on the way."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.ended = False
        self.failed = False
        self._partial = ""
        self._lock = threading.Lock()  # the relay's thread writes too

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self.out.write(text)
            *lines, self._partial = (self._partial + text).split("\n")
            if lines:
                self.out.flush()
            for line in lines:
                self._note(line)
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    def _note(self, line: str) -> None:
        try:
            event = contract.parse_event(line)
        except contract.EventError:
            return  # a damaged tagged line: the tuner reports it
        if event is not None and event["event"] == contract.END:
            self.ended = True
        elif event is not None and event["event"] == contract.ERROR:
            self.failed = True
