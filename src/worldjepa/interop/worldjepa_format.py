"""worldjepa's own model format: a folder with `model.safetensors` and `config.json`.

Like a Hugging Face model folder: weights as safetensors (no pickle, memory-mapped on load) and a JSON
config that rebuilds the modules without guessing:

    {"format": "worldjepa", "version": 1, "dtype": "fp32" | "bf16",
     "modules": {"encoder": {"kind": "encoder", "family": "vjepa2", "description": "...", "kwargs": {...}},
                 "predictor": {...}},
     ...extra keys of the caller (the AC world model keeps its pooling and normalisation here)}

A folder holds one or more named modules; weight keys are `<module name>.<parameter name>`. Loading
builds each module on the meta device and assigns the tensors read from the file (see
`worldjepa.interop.strict_load`), so weights are never held twice. `ACWorldModel.save/load` use this
same format.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file
from torch import Tensor, nn

from worldjepa.errors import UserError, one_line
from worldjepa.files import new_folder
from worldjepa.interop.architecture import Architecture, Kind, architecture_of
from worldjepa.interop.strict_load import build_loaded, check_kind

FORMAT, VERSION = "worldjepa", 1
WEIGHTS, CONFIG = "model.safetensors", "config.json"
Dtype = Literal["fp32", "bf16"]
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}


def torch_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise UserError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    return DTYPES[name]


def save_modules(
    directory: str | Path,
    modules: Mapping[str, nn.Module],
    dtype: Dtype = "fp32",
    overwrite: bool = False,
    **extra: Any,
) -> Path:
    """Write `modules` (name -> module) into `directory`, floating tensors cast to `dtype`; returns it.

    The folder is written whole or not at all (`worldjepa.files.new_folder`): a full disk or a crash
    leaves an earlier folder intact, and an existing one is replaced only with `overwrite`. Weights
    that are not finite are refused: such a model would only produce NaN.
    """
    cast = torch_dtype(dtype)
    directory = Path(directory)
    archs = {name: architecture_of(module) for name, module in modules.items()}
    weights = {
        f"{name}.{key}": (t.to(cast) if t.is_floating_point() else t).detach().cpu().contiguous()
        for name, module in modules.items()
        for key, t in module.state_dict().items()
    }
    broken = [key for key, t in weights.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if broken:
        raise UserError(
            f"not saving {directory}: {len(broken)} weight tensors hold NaN or infinite values (e.g. "
            f"{broken[0]}); the training that made them diverged"
        )
    config = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": dtype,
        "modules": {
            name: {"kind": a.kind, "family": a.family, "description": a.describe(), "kwargs": a.kwargs}
            for name, a in archs.items()
        },
        **extra,
    }
    with new_folder(directory, overwrite, "model folder") as tmp:
        save_file(weights, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return directory


def read_config(directory: str | Path) -> dict[str, Any]:
    """The folder's config.json, checked to be a worldjepa folder of this version."""
    directory = Path(directory)
    if not (directory / CONFIG).is_file() or not (directory / WEIGHTS).is_file():
        raise UserError(
            f"{directory} is not a worldjepa model folder (it needs {CONFIG} and {WEIGHTS}); "
            "save one with worldjepa.interop.save_modules or convert a checkpoint with `worldjepa convert`"
        )
    try:
        config = json.loads((directory / CONFIG).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = one_line(error)
        raise UserError(f"{directory / CONFIG} is not valid JSON ({reason}); re-save the model") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or config.get("version") != VERSION:
        found = (config.get("format"), config.get("version")) if isinstance(config, dict) else (None, None)
        raise UserError(
            f"{directory / CONFIG} is not a {FORMAT} version {VERSION} config "
            f"(format {found[0]!r}, version {found[1]!r}); re-save it with this worldjepa"
        )
    modules = config.get("modules")
    entries_ok = isinstance(modules, dict) and all(
        isinstance(m, dict) and isinstance(m.get("kind"), str) and isinstance(m.get("kwargs"), dict)
        for m in modules.values()
    )
    if not entries_ok:
        raise UserError(
            f"{directory / CONFIG} is corrupt (its modules lack a kind or arguments); re-save the model"
        )
    return config


def read_weights(path: Path, dtype: torch.dtype | None) -> dict[str, Tensor]:
    """Every tensor of a safetensors file (memory-mapped by safetensors), optionally cast."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {key: _cast(f.get_tensor(key), dtype) for key in f.keys()}  # noqa: SIM118
    except SafetensorError as error:
        raise UserError(
            f"{path} is not a readable safetensors file ({error}); re-save or re-download it"
        ) from None


def _cast(t: Tensor, dtype: torch.dtype | None) -> Tensor:
    return t.to(dtype) if dtype is not None and t.is_floating_point() else t


def load_modules(
    directory: str | Path,
    names: list[str] | None = None,
    dtype: Dtype | None = None,
    expect: Mapping[str, Kind | tuple[Kind, ...]] | None = None,
) -> dict[str, nn.Module]:
    """The modules saved in `directory` (all, or `names`), in eval mode, weights loaded strictly.

    dtype: "fp32" / "bf16" to cast on load; None keeps the stored dtype.
    expect: name -> kind the caller needs (e.g. {"predictor": "ac_predictor"}); another kind is a UserError.
    """
    directory = Path(directory)
    config = read_config(directory)
    saved = config["modules"]
    names = list(saved) if names is None else names
    for name in names:
        if name not in saved:
            raise UserError(f"{directory} holds no {name} (it holds: {', '.join(saved)})")
    weights = read_weights(directory / WEIGHTS, None if dtype is None else torch_dtype(dtype))
    modules = {}
    for name in names:
        arch = Architecture(saved[name]["kind"], saved[name]["kwargs"])
        source = f"{directory / WEIGHTS} [{name}]"
        if expect is not None and name in expect:
            check_kind(arch, expect[name], source)
        state = {k[len(name) + 1 :]: v for k, v in weights.items() if k.startswith(name + ".")}
        try:
            modules[name] = build_loaded(arch, state, source)
        except (
            KeyError,
            TypeError,
            ValueError,
            RuntimeError,
        ) as error:  # arguments from a damaged config.json
            raise UserError(
                f"{directory / CONFIG} describes a {name} that cannot be built ({one_line(error)}); re-save the model"
            ) from None
    return modules
