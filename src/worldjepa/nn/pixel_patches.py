"""Raw pixels as the latent: the ablation that tells what an encoder adds to a world model.

`PixelPatches` stands where the stage-1 ViT stands, with no parameters: a frame [B, 3, H, W] (normalised as
the encoder's input) becomes its p x p patches flattened, one token of 3 p^2 values per patch, in the ViT's
token order. The world model built on it (pooling, layer norm, the AC predictor, planning) is otherwise
the same, so its success rate is the pixel baseline of the same planner.
"""

from __future__ import annotations

from torch import Tensor, nn


class PixelPatches(nn.Module):
    """Frames [B, 3, H, W] -> patch tokens [B, (H/p)(W/p), 3 p^2] (row-major, as the ViT's tokens)."""

    def __init__(self, img_size: int = 64, patch_size: int = 8) -> None:
        super().__init__()
        self.img_size, self.patch_size = img_size, patch_size
        side = img_size // patch_size
        self.grid = (1, side, side)
        self.embed_dim = 3 * patch_size * patch_size

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch_size
        patches = x.unfold(2, p, p).unfold(3, p, p)  # [B, 3, h, w, p, p]
        return patches.permute(0, 2, 3, 1, 4, 5).flatten(3).flatten(1, 2)  # [B, h*w, 3*p*p]
