"""Which samples each training iteration takes, on every rank.

Iteration i of an epoch trains on a global batch of `batch_size` samples (the last one of the
epoch on what is left), split over the ranks as evenly as `partition_range` splits anything
(the ranks' shards too), each rank taking its part from its own shard in a shuffled order. The
order is seeded by (seed, epoch, rank), and an iteration's random draws by (seed, step, rank):
a run resumed from a checkpoint, even inside an epoch, takes the same batches and draws as one
that never stopped. Over an epoch each rank takes exactly its shard.
"""

from __future__ import annotations

import math

import numpy as np

from .workload import partition_range

SHUFFLE_KEY = 0x5EED  # keeps this stream apart from the data code's own seeded draws
RANDOM_KEY = 0xD0  # and the iterations' own random draws (dropout) apart from both


def check_batch_size(batch_size: int, ranks: int) -> None:
    """ValueError unless every rank can take an equal part of a full batch."""
    if batch_size % ranks:
        raise ValueError(
            f"--batchSize {batch_size} must be a multiple of the {ranks} processes "
            "(each takes an equal part of every full batch)"
        )


class Batches:
    def __init__(self, samples: int, batch_size: int, seed: int, rank: int, ranks: int) -> None:
        check_batch_size(batch_size, ranks)
        self.samples = samples
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.ranks = ranks
        self.shard = partition_range(samples, ranks, rank)[1]
        self.epoch_iterations = math.ceil(samples / batch_size)
        self._order: tuple[int, np.ndarray] | None = None

    def global_size(self, step: int) -> int:
        """Samples in the global batch of iteration `step` (counted over all epochs from 0)."""
        i = step % self.epoch_iterations
        return min(self.batch_size, self.samples - i * self.batch_size)

    def indices(self, step: int) -> np.ndarray:
        """Indices into this rank's shard for iteration `step`."""
        epoch, i = divmod(step, self.epoch_iterations)
        start = i * (self.batch_size // self.ranks)  # every earlier batch was a full one
        count = partition_range(self.global_size(step), self.ranks, self.rank)[1]
        return self._epoch_order(epoch)[start : start + count]

    def random_seed(self, step: int) -> int:
        """The seed of iteration `step`'s random draws on this rank (a model's dropout): a
        function of the step, so that a resumed run draws what one that never stopped does."""
        key = np.random.SeedSequence([self.seed, step, self.rank, RANDOM_KEY])
        return int(key.generate_state(1, dtype=np.uint64)[0])

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            key = np.random.SeedSequence([self.seed, epoch, self.rank, SHUFFLE_KEY])
            self._order = (epoch, np.random.default_rng(key).permutation(self.shard))
        return self._order[1]
