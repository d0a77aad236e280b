"""Where an object is, to a fraction of a pixel: spatial-softmax keypoints read with the robot's proprio.

A pushed block must be read from the camera image to ~1.5 mm for the planner to steer it (Push, 64 px
camera: 1 px is ~15 mm on the table; `benchmarks/push_block_energy.py --read-noise`). `StateReadout`, a
CNN ending in a flattening MLP, reads it 5-6 mm off however long it trains. Two things close the gap,
both measured on held-out Push episodes (docs/results.md):

- Keypoints (Levine et al. 2016, "End-to-end training of deep visuomotor policies"): a per-pixel network
  (1x1 convolutions: which colours are the object) gives `keypoints` maps of logits; a softmax over each
  map's pixels weighs the pixel coordinates into an expected position. Every pixel of the object's
  anti-aliased edge moves that average, so it follows the object below a pixel.
- The robot's own proprioception beside the keypoints: the hand in front of the block hides part of it and
  drags its keypoints; knowing where the hand is, the MLP that maps keypoints to the object's place undoes
  that. The centroid of the red pixels, mapped to the table, reads the block 5.3 mm off per axis where the
  hand is within 8 cm of it; an MLP on that centroid 4.2 mm, the same MLP given the hand's proprio 2.2 mm.

`ObjectLocator` returns the object's values (e.g. a block's x, y on the table) in data units, its targets
normalised by the data's statistics (constants of the architecture, kept in its config).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from worldjepa.errors import UserError
from worldjepa.nn.normalization import normalization_config, set_normalization_buffers

#: Keypoint coordinates span [-KEYPOINT_SCALE, KEYPOINT_SCALE] across the image: a block that moves over a
#: sixth of the picture then moves its keypoints about one unit, the scale of the normalised proprio.
KEYPOINT_SCALE = 3.0


class ObjectLocator(nn.Module):
    """Normalised frames [B, 3, H, W] and proprio states [B, P] -> object values [B, V], in data units."""

    def __init__(
        self,
        out_dim: int,
        proprio_dim: int,
        keypoints: int = 4,
        width: int = 16,
        hidden_dim: int = 256,
        normalization: dict[str, list[float]] | None = None,
    ) -> None:
        super().__init__()
        if min(out_dim, keypoints, width, hidden_dim) < 1 or proprio_dim < 0:
            raise UserError(
                "an object locator needs out_dim, keypoints, width and hidden_dim >= 1 and proprio_dim >= 0, "
                f"got {out_dim}, {keypoints}, {width}, {hidden_dim} and {proprio_dim}"
            )
        self.out_dim, self.proprio_dim, self.keypoints = out_dim, proprio_dim, keypoints
        self.width, self.hidden_dim = width, hidden_dim
        self.masks = nn.Sequential(
            nn.Conv2d(3, width, 1),
            nn.GELU(),
            nn.Conv2d(width, width, 1),
            nn.GELU(),
            nn.Conv2d(width, keypoints, 1),
        )
        self.head = nn.Sequential(
            nn.Linear(2 * keypoints + proprio_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, out_dim),
        )
        self.set_normalization(normalization)

    def set_normalization(self, normalization: dict[str, list[float]] | None) -> None:
        """`out_mean`, `out_std` (V values each), `proprio_mean`, `proprio_std` (P each); None: the identity."""
        sizes = {"out_mean": self.out_dim, "out_std": self.out_dim}
        sizes |= {"proprio_mean": self.proprio_dim, "proprio_std": self.proprio_dim}
        set_normalization_buffers(self, sizes, normalization, "object locator")

    def keypoints_of(self, frames: Tensor) -> Tensor:
        """frames [B, 3, H, W] -> each map's expected (x, y) [B, 2K], x first, in keypoint units."""
        logits = self.masks(frames).float()
        weights = logits.flatten(2).softmax(-1).view_as(logits)  # [B, K, H, W], each map sums to 1
        height, width = frames.shape[-2:]
        xs = ((torch.arange(width, device=frames.device) + 0.5) / width * 2 - 1) * KEYPOINT_SCALE
        ys = ((torch.arange(height, device=frames.device) + 0.5) / height * 2 - 1) * KEYPOINT_SCALE
        return torch.cat([weights.sum(2) @ xs, weights.sum(3) @ ys], dim=1)

    def read(self, keypoints: Tensor, proprio: Tensor) -> Tensor:
        """keypoints [B, 2K] (`keypoints_of`) and proprio [B, P] -> object values [B, V], data units."""
        inputs = torch.cat([keypoints, (proprio.float() - self.proprio_mean) / self.proprio_std], dim=1)
        return self.head(inputs) * self.out_std + self.out_mean

    def forward(self, frames: Tensor, proprio: Tensor) -> Tensor:
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise UserError(f"the object locator reads frames [B, 3, H, W], got {list(frames.shape)}")
        if proprio.shape != (len(frames), self.proprio_dim):
            raise UserError(
                f"the object locator reads {len(frames)} frames with {self.proprio_dim}-D proprio states "
                f"[B, {self.proprio_dim}], got {list(proprio.shape)}"
            )
        return self.read(self.keypoints_of(frames), proprio)

    def config(self) -> dict[str, Any]:
        config = {
            "out_dim": self.out_dim,
            "proprio_dim": self.proprio_dim,
            "keypoints": self.keypoints,
            "width": self.width,
            "hidden_dim": self.hidden_dim,
        }
        if self.normalized:
            config["normalization"] = normalization_config(self)
        return config
