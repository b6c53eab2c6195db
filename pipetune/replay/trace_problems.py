"""The problems a trace's validation collects: every one found, shown up to a cap, in the
file's order (file-level first, then by row and column), raised as one `TraceError`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from pipetune.replay.trace_format import COLUMNS, MAX_PROBLEMS, TraceError, TraceProblem


class Problems:
    """Collects problems, keeping at most `MAX_PROBLEMS` per check but counting them all."""

    def __init__(self) -> None:
        self.items: list[TraceProblem] = []
        self.total = 0

    def add(self, problem: TraceProblem) -> None:
        self.items.append(problem)
        self.total += 1

    def where(
        self, mask: pd.Series, column: str, expected: str, found: Callable[[int], str]
    ) -> None:
        """One problem per row where `mask` holds; `found(position)` describes the value."""
        positions = np.flatnonzero(mask.to_numpy(dtype=bool))
        self.total += len(positions)
        for pos in positions[:MAX_PROBLEMS]:
            self.items.append(TraceProblem(int(pos) + 1, column, expected, found(int(pos))))

    def raise_if_any(self) -> None:
        if self.total:
            shown = sorted(self.items, key=_problem_order)
            raise TraceError(
                f"malformed trace: {self.total} problem(s)", shown[:MAX_PROBLEMS], self.total
            )


def _problem_order(p: TraceProblem) -> tuple[int, int]:
    """File-level problems first, then by row, then by column position."""
    column = COLUMNS.index(p.column) if p.column in COLUMNS else len(COLUMNS)
    return (p.row or 0, column)
