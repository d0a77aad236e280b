"""DataLoader collate function that adds JEPA masks to each batch.

It runs in the DataLoader worker processes, so mask sampling overlaps the training step. The masks
are a pure function of the batch: the generator is seeded from the first sample's "seed" (which the
data pipeline adds to every sample), so they do not depend on the worker count and replay exactly
after a resume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import default_collate

from worldjepa.masks.blocks import Masks

# Mixed into the sample seed so the mask stream differs from a data augmentation seeded with the same
# number (otherwise the first sample's crop and the batch's block sizes would share random draws).
MASK_SEED_SALT = 0x6A657061  # "jepa"


class MaskCollator:
    """`MaskCollator(sampler)(samples)` -> default-collated batch plus "context" and "targets".

    With MultiBlock2D: context [B, Kc], targets [num_targets, B, Kt].
    With MultiBlock3D: context and targets are lists over mask generators of [B, Kc_g], [B, Kt_g].
    """

    def __init__(self, sampler: Callable[[int, torch.Generator], Masks]):
        self.sampler = sampler

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        if "seed" not in samples[0]:
            raise KeyError("MaskCollator needs a 'seed' key in each sample (the data pipeline adds it)")
        batch = default_collate(samples)
        generator = torch.Generator().manual_seed(int(samples[0]["seed"]) ^ MASK_SEED_SALT)
        masks = self.sampler(len(samples), generator)
        batch["context"] = masks.context
        batch["targets"] = masks.targets
        return batch
