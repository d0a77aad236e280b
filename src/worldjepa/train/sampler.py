"""Deterministic data order, so that a resumed run sees exactly the batches the uninterrupted run would.

The epoch permutation depends only on (seed, epoch); every sample also gets its own seed from
(seed, epoch, position in the permutation), which drives its random augmentations wherever it is
loaded (main process or any DataLoader worker). The data stream is therefore a pure function of
(seed, epoch, batch index), independent of `num_workers`, and a run restarts at any batch by skipping.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

_EPOCH_STRIDE = 1_000_003  # seed * stride + epoch: distinct permutation seeds for distinct (seed, epoch)
_POSITION_STRIDE = 2**31  # room for 2^31 samples per epoch before per-sample seeds could repeat


class SeededBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields this rank's slice of every global batch as `[(index, sample_seed), ...]`.

    A global batch holds `batch_size * world_size` consecutive entries of the epoch permutation; rank r
    takes the r-th contiguous slice of `batch_size`. With `drop_last=False` (meant for evaluation) the
    final short global batch is split as evenly as possible and ranks may receive shorter batches.
    """

    def __init__(
        self,
        dataset_len: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.dataset_len, self.batch_size, self.seed = dataset_len, batch_size, seed
        self.shuffle, self.drop_last, self.rank, self.world_size = shuffle, drop_last, rank, world_size
        self.epoch, self.start_batch = 0, 0

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's permutation and skip its first `start_batch` batches (for resume)."""
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        """Batches per full epoch (ignores `start_batch`)."""
        full, rest = divmod(self.dataset_len, self.global_batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def sample_seed(self, position: int) -> int:
        """Seed of the sample at `position` in this epoch's order; unique per (seed, epoch, position)."""
        return ((self.seed * _EPOCH_STRIDE + self.epoch) * _POSITION_STRIDE + position) % 2**63

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * _EPOCH_STRIDE + self.epoch)
            order = torch.randperm(self.dataset_len, generator=g).tolist()
        else:
            order = list(range(self.dataset_len))
        gbs = self.global_batch_size
        for b in range(self.start_batch, len(self)):
            lo = b * gbs
            hi = min(lo + gbs, self.dataset_len)
            # contiguous, near-equal split of the global batch; equal slices of batch_size when it is full
            n, r = divmod(hi - lo, self.world_size)
            start = lo + self.rank * n + min(self.rank, r)
            stop = start + n + (self.rank < r)
            yield [(order[p], self.sample_seed(p)) for p in range(start, stop)]


class SeededDataset(Dataset):
    """Wraps a dataset of dict items so that `ds[(index, seed)]` is reproducible anywhere.

    If the base dataset has `sample(index, generator)`, it is called with a `torch.Generator` seeded by
    `seed` (for random augmentations); otherwise `dataset[index]`. The item gains the key `"seed"`, from
    which collators derive per-batch randomness (e.g. masks).
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        index, seed = key
        sample = getattr(self.dataset, "sample", None)
        item = sample(index, torch.Generator().manual_seed(seed)) if sample else self.dataset[index]
        if not isinstance(item, Mapping):
            raise TypeError(f"dataset items must be dicts, got {type(item).__name__} at index {index}")
        return {**item, "seed": seed}
