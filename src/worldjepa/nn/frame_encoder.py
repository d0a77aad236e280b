"""Frame latents: the space the action-conditioned predictor predicts in.

A frame goes through the frozen stage-1 encoder alone (a video encoder repeats it into one tubelet,
as V-JEPA 2-AC does), then optionally an average pool to fewer tokens, then a layer norm without
affine parameters. The layer norm comes last because the AC predictor's outputs are layer-normed
too (the official `normalize_reps`): targets and predictions must live in the same normalised space,
and a mean of normed tokens is no longer normed.

`tokens_per_frame`:
- "grid": every patch token (the official setting: 16x16 = 256 tokens at 256 px);
- an integer n = g*g: an adaptive average pool of the patch grid to g x g tokens; 1 is the mean token.
  One token per frame makes planning about 10x cheaper (DESIGN.md: 0.85 s vs 6.2 s per official CEM
  iteration); a 2x2 grid keeps coarse "where" information that a single mean token blurs.

The same module encodes the training cache and the planner's observations, so both see one space.
"""

from __future__ import annotations

import hashlib
import json
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worldjepa.data.transforms import IMAGENET_MEAN, IMAGENET_STD, center_square_box, crop_resize, normalize
from worldjepa.errors import UserError

TokensPerFrame = int | str  # "grid" or a square number of pooled tokens (1, 4, 9, ...)


def pooled_side(tokens_per_frame: TokensPerFrame) -> int | None:
    """None for "grid", else the side g of the g x g pooled grid; anything else is a UserError."""
    if tokens_per_frame == "grid":
        return None
    n = tokens_per_frame
    if not isinstance(n, int) or n < 1 or math.isqrt(n) ** 2 != n:
        raise UserError(
            f"tokens_per_frame must be 'grid' or a square number (1, 4, 9, ...), got {tokens_per_frame!r}"
        )
    return math.isqrt(n)


class FrameEncoder(nn.Module):
    """Frozen encoder + pooling + layer norm: frames -> latent tokens [B, N, D] on a (h, w) grid.

    `forward` takes uint8 pixels [B, H, W, 3] (env observations, stored trajectories) or float frames
    [B, 3, H, W] in [0, 1]; frames of another size than the encoder's are centre-cropped to a square and
    resized, as the evaluation view of pretraining. The encoder is frozen in place (eval, no grad).
    """

    def __init__(
        self,
        encoder: nn.Module,
        tokens_per_frame: TokensPerFrame = "grid",
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.tokens_per_frame = tokens_per_frame
        self.side = pooled_side(tokens_per_frame)
        self.mean, self.std = tuple(mean), tuple(std)
        _, height, width = encoder.grid
        self.image_size = (height * encoder.patch_size, width * encoder.patch_size)
        self.grid = (height, width) if self.side is None else (self.side, self.side)

    def pixels_to_input(self, pixels: Tensor) -> Tensor:
        """uint8 [B, H, W, 3] or float [B, 3, H, W] in [0, 1] -> normalized float [B, 3, h, w] at the encoder size."""
        if pixels.dtype == torch.uint8:
            if pixels.ndim != 4 or pixels.shape[-1] != 3:
                raise UserError(f"uint8 pixels must be [B, H, W, 3], got {list(pixels.shape)}")
            frames = pixels.permute(0, 3, 1, 2).float().div_(255.0)
        else:
            if pixels.ndim != 4 or pixels.shape[1] != 3:
                raise UserError(f"float frames must be [B, 3, H, W] in [0, 1], got {list(pixels.shape)}")
            frames = pixels.float()
        height, width = frames.shape[-2:]
        if (height, width) != self.image_size:
            if self.image_size[0] != self.image_size[1]:
                raise UserError(f"frames are {height}x{width}; this encoder needs {self.image_size}")
            frames = crop_resize(frames, center_square_box(height, width), self.image_size[0])
        return normalize(frames, self.mean, self.std)

    @torch.no_grad()
    def forward(self, pixels: Tensor) -> Tensor:
        """pixels (see class doc) -> layer-normed latent tokens [B, N, D], N = grid[0] * grid[1]."""
        tokens = self.encoder(self.pixels_to_input(pixels))  # [B, H*W, D]: one tubelet per frame
        if self.side is not None:
            height, width = self.encoder.grid[1:]
            maps = tokens.transpose(1, 2).unflatten(2, (height, width))  # [B, D, H, W]
            tokens = F.adaptive_avg_pool2d(maps, self.side).flatten(2).transpose(1, 2)
        return F.layer_norm(tokens.float(), tokens.shape[-1:])

    def fingerprint(self) -> str:
        """sha256 of everything that decides the latents: architecture, weights, pooling, normalisation."""
        digest = hashlib.sha256(repr(self.encoder).encode())
        settings = [self.tokens_per_frame, self.mean, self.std, self.image_size]
        digest.update(json.dumps(settings).encode())
        for name, tensor in self.encoder.state_dict().items():
            digest.update(f"{name}:{tensor.dtype}:{list(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()
