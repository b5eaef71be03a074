"""Which clips each process trains on at each step, and the randomness each sample gets.

The sample order is an endless stream of epoch permutations (``randperm`` seeded by ``seed`` and the
epoch). Step ``s`` takes stream positions ``[p, p + G)`` where ``p`` = samples seen so far and ``G`` =
global batch = per-process batch x world size; rank ``r`` takes the ``r``-th slice of ``B``. So the data
position is one integer (``samples_seen``), saved in checkpoints, and a run with 2 processes of batch B
sees exactly the clips of one process with batch 2B.

Per-sample randomness (timestep, noise, text dropout) comes from a generator seeded by
``(seed, step, slot)`` where ``slot`` is the sample's place in the global batch: independent of how the
batch is split over processes and of where a run was resumed.

``repeats`` (one count per clip, default 1) makes an epoch hold clip ``i`` ``repeats[i]`` times: a class the
data holds too little of is drawn more often without rebuilding the cache (``train.motion_repeats``).
"""
from __future__ import annotations

import warnings

import torch

_MASK64 = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64 finaliser: spreads nearby integers over the 64-bit range."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def sample_seed(seed: int, step: int, slot: int) -> int:
    return _mix(_mix(_mix(seed) ^ step) ^ slot) & ((1 << 63) - 1)


def sample_generator(seed: int, step: int, slot: int) -> torch.Generator:
    return torch.Generator().manual_seed(sample_seed(seed, step, slot))


class DataOrder:
    def __init__(self, num_items: int, seed: int, repeats: list[int] | None = None):
        if num_items <= 0:
            raise ValueError("the cache holds no clips: nothing to train on")
        if repeats is not None and (len(repeats) != num_items or min(repeats) < 1):
            raise ValueError(f"repeats must hold one count >= 1 per clip ({num_items} clips)")
        # the clip index at each place of an epoch, before shuffling
        self._items = torch.arange(num_items) if repeats is None else \
            torch.repeat_interleave(torch.arange(num_items), torch.as_tensor(repeats))
        self.n = len(self._items)
        self.seed = seed
        self._perm_epoch = -1
        self._perm = None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(sample_seed(self.seed, epoch, 0x5EED))
            self._perm = self._items[torch.randperm(self.n, generator=g)]
            self._perm_epoch = epoch
        return self._perm

    def indices(self, start: int, count: int) -> list[int]:
        """Stream positions ``[start, start + count)`` as clip indices."""
        out = []
        for p in range(start, start + count):
            epoch, offset = divmod(p, self.n)
            out.append(int(self._permutation(epoch)[offset]))
        return out

    def rank_batch(self, samples_seen: int, batch_size: int, rank: int, world_size: int) -> tuple[list[int], list[int]]:
        """(clip indices, global slots) of this rank's share of the next global batch."""
        first = samples_seen + rank * batch_size
        slots = list(range(rank * batch_size, (rank + 1) * batch_size))
        return self.indices(first, batch_size), slots

    def epoch_of(self, samples_seen: int) -> float:
        return samples_seen / self.n


def repeats_by_motion(clips: list[dict], motion_repeats: dict) -> list[int] | None:
    """Per-clip repeat counts from ``{motion: count}`` and the cache manifest's clip records (their
    ``"motion"``); None when no repeats are asked for. A motion no clip carries is warned about."""
    if not motion_repeats:
        return None
    motions = [clip.get("motion") for clip in clips]
    missing = sorted(set(motion_repeats) - set(motions))
    if missing:
        warnings.warn(f"train.motion_repeats names {missing}, which no clip of the cache carries "
                      f"(its motions: {sorted({m for m in motions if m})}); nothing is repeated for them",
                      stacklevel=2)
    return [int(motion_repeats.get(m, 1)) for m in motions]
