"""Strict weight loading with a readable report, and construction without a throw-away random init.

Every loader in worldjepa.interop ends here: the weights must fit the module key for key and shape for
shape, and a mismatch is a UserError that says what the weights hold and what was expected, e.g.
"model.safetensors holds a ViT-L/16 video encoder, 1024 wide, 24 deep, RoPE but a ViT-H/16 video
encoder, 1280 wide, 32 deep, RoPE was expected (...)".

`build_loaded` constructs the module on the meta device (no memory, no init) and then assigns the
loaded tensors as its parameters (`load_state_dict(assign=True)`): the weights exist once in memory,
not twice, and memory-mapped tensors stay memory-mapped.
"""

from collections.abc import Mapping

from torch import Tensor, nn

from worldjepa.errors import UserError
from worldjepa.interop.architecture import (
    FAMILY_NAMES,
    Architecture,
    Kind,
    architecture_of,
    describe,
    with_article,
)

KIND_NAMES = {
    "encoder": "an encoder",
    "predictor": "a masked predictor",
    "ac_predictor": "a V-JEPA 2-AC predictor",
    "proprio_head": "a proprio head",
    "state_readout": "a state readout",
    "object_locator": "an object locator",
    "pixel_patches": "raw pixel patches",
}
SHOWN = 4  # keys listed per problem before "... and N more"


def _listing(keys: list[str]) -> str:
    more = f" ... and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def fit_problems(own: Mapping[str, Tensor], state: Mapping[str, Tensor]) -> list[str]:
    """Missing keys, unexpected keys and shape mismatches of `state` against a module's `own` state."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = [f"missing keys: {_listing(missing)}"] if missing else []
    problems += [f"unexpected keys: {_listing(unexpected)}"] if unexpected else []
    problems += [f"{k} is {tuple(state[k].shape)}, expected {tuple(own[k].shape)}" for k in shapes[:SHOWN]]
    return problems


def expected_description(model: nn.Module) -> str:
    try:
        return architecture_of(model).describe()
    except UserError:
        return type(model).__name__


def load_strict(model: nn.Module, state: Mapping[str, Tensor], source: str, assign: bool = False) -> None:
    """Load `state` (our key names) into `model`, every key and shape matching, or raise a UserError."""
    problems = fit_problems(model.state_dict(), state)
    if problems:
        raise UserError(
            f"{source} holds {with_article(describe(state))} but {with_article(expected_description(model))} "
            f"was expected ({'; '.join(problems)}); load it with the matching model config, "
            "or let worldjepa infer the architecture from the weights"
        )
    model.load_state_dict(state, strict=True, assign=assign)


def check_kind(arch: Architecture, expect: Kind | tuple[Kind, ...], source: str) -> None:
    """A UserError naming what `source` holds when it is not (one of) the kind(s) the caller needs."""
    kinds = expect if isinstance(expect, tuple) else (expect,)
    if arch.kind not in kinds:
        wanted = " or ".join(KIND_NAMES[kind] for kind in kinds)
        raise UserError(
            f"{source} holds {with_article(arch.describe())} ({FAMILY_NAMES[arch.family]} weights) but "
            f"{wanted} was expected; pass the checkpoint (or entry) that holds one"
        )


def build_loaded(arch: Architecture, state: Mapping[str, Tensor], source: str) -> nn.Module:
    """Construct `arch` on the meta device and assign `state` (our key names) as its weights, in eval mode."""
    model = arch.build(device="meta")
    load_strict(model, state, source, assign=True)
    left = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:  # a tensor made in __init__ but not saved: rebuild it for real rather than run with no data
        model = arch.build()
        load_strict(model, state, source)
    return model.eval()
