"""Multiblock mask samplers (I-JEPA 2D, V-JEPA 3D) and the DataLoader collator that applies them."""

from worldjepa.masks.blocks import Masks
from worldjepa.masks.collator import MaskCollator
from worldjepa.masks.multiblock2d import MultiBlock2D, MultiBlock2DConfig
from worldjepa.masks.multiblock3d import MaskGeneratorConfig, MultiBlock3D, MultiBlock3DConfig

__all__ = [
    "MaskCollator",
    "MaskGeneratorConfig",
    "Masks",
    "MultiBlock2D",
    "MultiBlock2DConfig",
    "MultiBlock3D",
    "MultiBlock3DConfig",
]
