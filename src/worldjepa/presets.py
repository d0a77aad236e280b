"""The two kinds of preset, as typed configs: a pretraining run (I-JEPA / V-JEPA) and a world-model
pipeline (collect -> stage 1 -> stage 2 -> planning). Each section's defaults live in its own dataclass;
configs/*.yaml list only what they change (see `worldjepa.config`).

    cfg = load_config("wm_arm_reach", ["planner.horizon=5"])   # -> WorldModelPreset, checked
    cfg.planner.horizon, cfg.world_model.train.lr               # typed attributes, no raw lookups
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from worldjepa.config import apply_overrides, from_dict, read_yaml, to_dict
from worldjepa.data.datasets import DataConfig
from worldjepa.envs.registry import EnvConfig
from worldjepa.errors import UserError
from worldjepa.eval.frozen import ProbeConfig
from worldjepa.masks import MultiBlock2DConfig, MultiBlock3DConfig
from worldjepa.methods.ac_posttrain import ACPostTrainConfig
from worldjepa.methods.object_locator_fit import ObjectLocatorFitConfig
from worldjepa.methods.proprio_fit import ProprioFitConfig
from worldjepa.methods.regularizers import RegularizerConfig
from worldjepa.methods.state_readout_fit import StateReadoutFitConfig
from worldjepa.methods.vjepa import VJEPA21Config
from worldjepa.models import ModelConfig
from worldjepa.nn.frame_encoder import TokensPerFrame, pooled_side
from worldjepa.nn.sizes import AC_PREDICTORS, Size, lookup
from worldjepa.planning.planner_config import PlannerConfig
from worldjepa.train.trainer import TrainConfig

MASKS = {"ijepa": MultiBlock2DConfig, "vjepa": MultiBlock3DConfig}
EMA = {"ijepa": (0.996, 1.0), "vjepa": (0.998, 1.0)}  # the papers' momentum schedules


@dataclass
class PretrainPreset:
    """A pretraining run: `worldjepa pretrain` trains it, `worldjepa probe` evaluates it frozen.

    method: ijepa (images; masks: I-JEPA's multiblock 2D) | vjepa (video; masks: V-JEPA's 3D generators,
    and the V-JEPA 2.1 options in `vjepa21`). masks and ema (the target encoder's momentum, start and
    end) default to the method's paper values. motion_weight (vjepa only; 0: V-JEPA's loss): how much more
    the target tokens that change over the clip count in the loss (`worldjepa.methods.vjepa.motion_weights`,
    a deviation from the papers, measured in the README's stage-1 table).
    """

    method: Literal["ijepa", "vjepa"] = "ijepa"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    masks: Any = None  # the method's mask config (MASKS), built in __post_init__
    ema: tuple[float, float] | None = None
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    vjepa21: VJEPA21Config = field(default_factory=VJEPA21Config)
    motion_weight: float = 0.0
    train: TrainConfig = field(default_factory=lambda: TrainConfig(total_steps=600))
    probe: ProbeConfig = field(default_factory=ProbeConfig)

    def __post_init__(self) -> None:
        self.ema = self.ema or EMA[self.method]
        masks_cls = MASKS[self.method]
        if not isinstance(self.masks, masks_cls):
            self.masks = from_dict(masks_cls, self.masks, "masks")
        if self.method == "ijepa" and self.vjepa21 != VJEPA21Config():
            raise UserError("vjepa21 options (dense loss, deep supervision) are for method=vjepa only")
        if (self.motion_weight and self.method != "vjepa") or self.motion_weight < 0:
            raise UserError(
                f"motion_weight weighs a video's changing tokens: it needs method=vjepa and a value >= 0, got "
                f"{self.motion_weight} with method={self.method}"
            )
        if self.video and self.data.num_frames < self.model.tubelet_size:
            raise UserError(
                f"data.num_frames ({self.data.num_frames}) must be at least model.tubelet_size "
                f"({self.model.tubelet_size}) for video"
            )

    @property
    def video(self) -> bool:
        return self.method == "vjepa"

    @property
    def num_frames(self) -> int:
        """Frames the encoder takes: the clip length for video, 1 for images."""
        return self.data.num_frames if self.video else 1


@dataclass
class CollectConfig:
    """The `collect:` section (`worldjepa.stages.collect.collect` explains each field)."""

    episodes: int = 300
    policy: Literal["random", "expert", "mix"] = "mix"
    expert_fraction: float = 0.5
    noise: float = 0.2
    workers: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.episodes < 1 or not 0.0 <= self.expert_fraction <= 1.0:
            raise UserError(
                f"collect.episodes must be >= 1 and collect.expert_fraction in [0, 1], got {self.episodes} "
                f"and {self.expert_fraction}"
            )


@dataclass
class EncoderStage:
    """Stage 1 of a world-model preset: a pretraining preset and its overrides. The data (the collected
    video at the env's image size) and the device come from the world-model preset."""

    preset: str = "vjepa2_tiny"
    overrides: list[str] = field(
        default_factory=lambda: [
            "data.num_frames=4",
            "train.batch_size=32",
            "train.total_steps=300",
            "train.ckpt_every=100",
        ]
    )


def _stage2_training() -> TrainConfig:
    return TrainConfig(
        total_steps=1500,
        batch_size=64,
        lr=5e-4,
        start_lr=1e-4,
        warmup_fraction=0.05,
        final_weight_decay=0.04,
        grad_clip=1.0,
        log_every=50,
        ckpt_every=500,
    )


@dataclass
class WorldModelConfig:
    """The `world_model:` section, stage 2: V-JEPA 2-AC post-training over the frozen stage-1 encoder.

    tokens_per_frame: "grid" (every patch token) or a square number of pooled tokens per frame.
    predictor_size names the AC predictor's shape (`worldjepa.nn.sizes`); a width, depth or head count set
    here wins. proprio: learned (an MLP fitted after the predictor) | additive (s + a, for actions that are
    state deltas) | none. context_length: predicted steps per training clip; frame_skip: env actions per
    model step. cache_precision: autocast of the one-off frame encoding; precision: of encode / unroll at
    planning time. state_readout: the network that reads a goal state from a goal image (models with
    proprioception) and its fit. object_locator: the network that reads an object's position from the
    camera image and the robot's proprio, and its fit: the world model then tracks the object
    (`worldjepa.methods.object_tracking`; the data must record object states); null: it tracks none.
    """

    tokens_per_frame: TokensPerFrame = 4
    predictor_size: str = "tiny"
    predictor_embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    proprio: Literal["learned", "additive", "none"] = "learned"
    context_length: int = 3
    frame_skip: int = 1
    cache_precision: Literal["fp32", "bf16"] = "bf16"
    precision: Literal["fp32", "bf16"] = "bf16"
    posttrain: ACPostTrainConfig = field(default_factory=ACPostTrainConfig)
    proprio_fit: ProprioFitConfig = field(default_factory=ProprioFitConfig)
    state_readout: StateReadoutFitConfig = field(default_factory=StateReadoutFitConfig)
    object_locator: ObjectLocatorFitConfig | None = None
    train: TrainConfig = field(default_factory=_stage2_training)

    def __post_init__(self) -> None:
        pooled_side(self.tokens_per_frame)  # refuses anything but "grid" or a square number
        self.predictor_shape  # noqa: B018 (refuses an unknown size name now)
        if self.object_locator is not None and (
            self.proprio != "learned" or self.proprio_fit.frame_context or self.state_readout.pair
        ):
            raise UserError(
                "world_model.object_locator tracks an object with the learned proprio head (proprio: learned, "
                "without proprio_fit.frame_context) and a single-frame state readout (state_readout.pair: false)"
            )
        if self.context_length < 1 or self.frame_skip < 1:
            raise UserError(
                f"world_model.context_length and frame_skip must be >= 1, got {self.context_length} and "
                f"{self.frame_skip}"
            )

    @property
    def predictor_shape(self) -> Size:
        """The AC predictor's size with this section's explicit values written over it."""
        size = lookup(AC_PREDICTORS, self.predictor_size, "world_model.predictor_size: AC predictor")
        heads = self.num_heads or size.rope_heads
        return Size(self.predictor_embed_dim or size.embed_dim, self.depth or size.depth, heads, heads)


#: Where episodes start: validation seeds for every choice that is tuned, test seeds for reported tables
#: only; neither range may hold a seed of the training data (checked every run).
SPLIT_SEEDS = {"validation": 200_000, "test": 300_000}
SPLIT_SIZE = 10_000


@dataclass
class EvaluateConfig:
    """The `evaluate:` section: closed-loop episodes (episode i resets with the split's first seed + i),
    GIFs of the first `gif_episodes`, and the rows beside the world model's: random actions, and the
    privileged references (`privileged_goal_state`: the same agent handed the simulator's goal state;
    `simulator`: the same planner on the true simulator, with `simulator_samples` candidates;
    `true_dynamics`: that planner on the true simulator scoring the world model's image embeddings)."""

    episodes: int = 10
    split: Literal["validation", "test"] = "validation"
    gif_episodes: int = 3
    baselines: list[Literal["random", "privileged_goal_state", "simulator", "true_dynamics"]] = field(
        default_factory=lambda: ["random"]
    )
    simulator_samples: int = 64

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise UserError(f"evaluate.episodes must be >= 1, got {self.episodes}")

    @property
    def seed(self) -> int:
        """The first episode's reset seed."""
        return SPLIT_SEEDS[self.split]


@dataclass
class WorldModelPreset:
    """The main job's pipeline: collect in `env`, pretrain the encoder (stage 1), post-train the
    action-conditioned world model (stage 2), then plan and evaluate. Defaults: the arm Reach task."""

    env: EnvConfig = field(default_factory=EnvConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    encoder: EncoderStage = field(default_factory=EncoderStage)
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def __post_init__(self) -> None:
        simulated = {"simulator", "true_dynamics"} & set(self.evaluate.baselines)
        if simulated and self.evaluate.simulator_samples < self.planner.top_k:
            raise UserError(
                f"evaluate.simulator_samples ({self.evaluate.simulator_samples}) must be at least "
                f"planner.top_k ({self.planner.top_k})"
            )

    @property
    def device(self) -> str:
        """The device of every stage (`--device`): stage 1, stage 2 and planning."""
        return self.world_model.train.device

    def stage1(self, data_dir: str | Path) -> PretrainPreset:
        """The encoder preset with its overrides, reading the collected video at the env's image size."""
        overrides = [
            "data.dataset=trajectories",
            f"data.root={data_dir}",
            f"data.image_size={self.env.image_size}",
            f"train.device={self.device}",
            *self.encoder.overrides,
        ]
        return load_config(self.encoder.preset, overrides, PretrainPreset)


Preset = PretrainPreset | WorldModelPreset


def load_config(
    name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = (), kind: type | None = None
) -> Any:
    """A preset (or a run's saved config.yaml) with the defaults filled in and `overrides` applied,
    every key and value checked. `kind` (PretrainPreset / WorldModelPreset) is read from the sections
    when not given; a preset of the other kind is refused."""
    raw = read_yaml(name_or_path)
    found = WorldModelPreset if {"env", "world_model", "planner"} & set(raw) else PretrainPreset
    if kind is not None and found is not kind:
        wanted = "a world-model" if kind is WorldModelPreset else "a pretraining"
        raise UserError(f"config '{name_or_path}' is not {wanted} preset")
    full = to_dict(from_dict(found, raw))
    return from_dict(found, apply_overrides(full, overrides))
