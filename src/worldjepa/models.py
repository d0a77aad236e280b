"""The networks a pretraining preset describes (`model:` section): the ViT encoder and its masked
predictor, assembled into the I-JEPA or V-JEPA method with its mask sampler.

Shared by every stage that needs them (pretraining builds them, the probe builds a random-init twin,
`worldjepa.interop.pretrain_run` rebuilds a run's encoder to load its weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from worldjepa.errors import UserError
from worldjepa.masks import MaskCollator, MultiBlock2D, MultiBlock2DConfig, MultiBlock3D, MultiBlock3DConfig
from worldjepa.methods.ijepa import IJEPA
from worldjepa.methods.jepa import JEPA
from worldjepa.methods.vjepa import VJEPA
from worldjepa.nn.predictor import MaskedPredictor
from worldjepa.nn.sizes import ENCODERS, PREDICTORS, Size, lookup
from worldjepa.nn.vit import VisionTransformer

if TYPE_CHECKING:
    from worldjepa.presets import PretrainPreset


@dataclass
class ModelConfig:
    """The `model:` section: encoder and predictor sizes by name (`worldjepa.nn.sizes`), token geometry
    and position encoding. A width, depth, head count or MLP ratio set here wins over the size's
    (`encoder_shape` / `predictor_shape` are the result)."""

    size: str = "tiny"
    predictor_size: str = "tiny"
    patch_size: int = 8
    tubelet_size: int = 2
    pos_embed: Literal["sincos", "rope"] = "sincos"
    rope_compat: bool = False  # the released V-JEPA 2 weights' rotation (loading them); clean otherwise
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    mlp_ratio: float | None = None
    predictor_embed_dim: int | None = None
    predictor_depth: int | None = None
    predictor_num_heads: int | None = None

    def __post_init__(self) -> None:
        for name in ("patch_size", "tubelet_size"):
            if getattr(self, name) < 1:
                raise UserError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        self.encoder_shape, self.predictor_shape  # noqa: B018 (refuses unknown size names now)

    @property
    def encoder_shape(self) -> Size:
        """The encoder's size with this section's explicit values written over it."""
        return _resolve(lookup(ENCODERS, self.size, "model.size: encoder"), self.pos_embed, self.embed_dim,
                        self.depth, self.num_heads, self.mlp_ratio)  # fmt: skip

    @property
    def predictor_shape(self) -> Size:
        size = lookup(PREDICTORS, self.predictor_size, "model.predictor_size: predictor")
        return _resolve(size, self.pos_embed, self.predictor_embed_dim, self.predictor_depth,
                        self.predictor_num_heads, None)  # fmt: skip


def _resolve(
    size: Size, pos_embed: str, width: int | None, depth: int | None, heads: int | None, mlp: float | None
) -> Size:
    """`size` with the explicitly set values (None: the size's) and its head count for `pos_embed`."""
    heads = heads or size.num_heads(pos_embed)
    shape = Size(width or size.embed_dim, depth or size.depth, heads, heads, mlp or size.mlp_ratio)
    if min(shape.embed_dim, shape.depth, shape.heads) < 1:
        raise UserError(f"network width, depth and heads must be >= 1, got {shape}")
    return shape


def token_geometry(model: ModelConfig, image_size: int, num_frames: int) -> dict:
    """What the encoder and its predictor share: input grid, block shape, position encoding."""
    return {
        "img_size": image_size,
        "patch_size": model.patch_size,
        "num_frames": num_frames,
        "tubelet_size": model.tubelet_size,
        "mlp_ratio": model.encoder_shape.mlp_ratio,
        "pos_embed": model.pos_embed,
        "rope_compat": model.rope_compat,
    }


def build_encoder(model: ModelConfig, image_size: int, num_frames: int) -> VisionTransformer:
    """The context encoder (num_frames 1: an image encoder)."""
    shape = model.encoder_shape
    return VisionTransformer(
        embed_dim=shape.embed_dim,
        depth=shape.depth,
        num_heads=shape.heads,
        **token_geometry(model, image_size, num_frames),
    )


def build_predictor(
    model: ModelConfig, image_size: int, num_frames: int, num_mask_tokens: int, num_levels: int = 1
) -> MaskedPredictor:
    video, shape = num_frames > 1, model.predictor_shape
    return MaskedPredictor(
        num_levels=num_levels,
        embed_dim=model.encoder_shape.embed_dim,
        predictor_embed_dim=shape.embed_dim,
        depth=shape.depth,
        num_heads=shape.heads,
        num_mask_tokens=num_mask_tokens,
        zero_init_mask_tokens=video,  # V-JEPA zero-initialises its mask tokens, I-JEPA draws its one
        **token_geometry(model, image_size, num_frames),
    )


def build_method(cfg: PretrainPreset) -> JEPA:
    """I-JEPA (images) or V-JEPA (video; V-JEPA 2.1's options in `cfg.vjepa21`) with fresh networks."""
    image_size, num_frames, model = cfg.data.image_size, cfg.num_frames, cfg.model
    encoder = build_encoder(model, image_size, num_frames)
    if cfg.method == "ijepa":
        return IJEPA(encoder, build_predictor(model, image_size, 1, 1), cfg.ema, cfg.regularizer)
    levels = len(cfg.vjepa21.levels) + 1
    predictor = build_predictor(model, image_size, num_frames, len(cfg.masks.generators), num_levels=levels)
    return VJEPA(encoder, predictor, cfg.ema, cfg.regularizer, cfg.vjepa21, cfg.motion_weight)


def build_mask_collator(
    masks: MultiBlock2DConfig | MultiBlock3DConfig, encoder: VisionTransformer
) -> MaskCollator:
    """Multiblock masks on the encoder's token grid: 3D for video configs, 2D (one frame) for images."""
    if isinstance(masks, MultiBlock3DConfig):
        return MaskCollator(MultiBlock3D(encoder.grid, masks))
    return MaskCollator(MultiBlock2D(encoder.grid[1:], masks))
