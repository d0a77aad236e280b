"""`convert`: one call between official checkpoints, worldjepa model folders and Hugging Face folders."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from torch import nn

from worldjepa.errors import UserError
from worldjepa.files import check_new_folder, new_folder
from worldjepa.interop.hf import load_hf, save_hf
from worldjepa.interop.official import build_official, official_part, read_official
from worldjepa.interop.worldjepa_format import Dtype, load_modules, save_modules, torch_dtype

SourceFormat = Literal["official", "hf", "worldjepa"]
DestinationFormat = Literal["worldjepa", "hf"]
ROLES = {"encoder": "encoder", "target_encoder": "encoder", "predictor": "predictor"}


def _roles(part: str) -> dict[str, str]:
    """ "target_encoder+predictor" -> {"target_encoder": "encoder", "predictor": "predictor"}."""
    parts = [p.strip() for p in part.split("+")]
    unknown = [p for p in parts if p not in ROLES]
    if unknown or not parts:
        raise UserError(
            f"part {part!r} is not one of encoder, target_encoder, predictor (or several joined by '+', "
            "e.g. target_encoder+predictor)"
        )
    roles = {p: ROLES[p] for p in parts}
    if len(set(roles.values())) < len(roles):
        raise UserError(f"part {part!r} names two encoders; pick encoder or target_encoder")
    return roles


def _select(modules: Mapping[str, nn.Module], roles: Mapping[str, str], source: str) -> dict[str, nn.Module]:
    missing = [role for role in roles.values() if role not in modules]
    if missing:
        raise UserError(f"{source} holds no {' or '.join(missing)} (it holds: {', '.join(modules)})")
    return {role: modules[role] for role in roles.values()}


def convert(
    src: str | Path,
    dst: str | Path,
    src_format: SourceFormat,
    dst_format: DestinationFormat,
    part: str = "target_encoder",
    dtype: Dtype = "fp32",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert the model in `src` and write it to the folder `dst`; returns `dst`.

    src_format: "official" (an I-JEPA / V-JEPA `.pth.tar` or V-JEPA 2 / 2-AC `.pt` file), "hf" (a local
      transformers folder of an IJepaModel or VJEPA2Model) or "worldjepa" (our model folder).
    dst_format: "worldjepa" (model.safetensors + config.json) or "hf" (`save_pretrained` folder).
    part: what to convert: "target_encoder" (the EMA encoder, the one for features), "encoder",
      "predictor", or several joined by "+". A Hugging Face VJEPA2Model holds an encoder and its
      predictor, so converting V-JEPA 2 to "hf" needs "target_encoder+predictor". Folders hold one
      encoder: "encoder" and "target_encoder" both name it there.
    dtype: "fp32" or "bf16", the dtype of the written weights.
    overrides: for official files, constructor arguments the weights cannot give, per checkpoint entry,
      e.g. {"target_encoder": {"num_heads": 4}, "predictor": {"num_heads": 4, "img_size": 64}} for sizes
      outside the released ones (see worldjepa.interop.architecture).
    overwrite: replace `dst` when it already holds something (refused otherwise, before any work). `dst`
      is written whole or not at all, and never in place of `src`.
    """
    if src_format not in ("official", "hf", "worldjepa"):
        raise UserError(f"source format must be official, hf or worldjepa, got {src_format!r}")
    if dst_format not in ("worldjepa", "hf"):
        raise UserError(f"destination format must be worldjepa or hf, got {dst_format!r}")
    roles = _roles(part)
    cast = torch_dtype(dtype)
    _check_destination(Path(src), Path(dst), overwrite)
    if src_format == "official":
        checkpoint = read_official(src)
        modules = {
            role: build_official(
                official_part(checkpoint, name, str(src)),
                f"{src} [{name}]",
                **(overrides or {}).get(name, {}),
            )
            for name, role in roles.items()
        }
    elif src_format == "hf":
        modules = _select(load_hf(src), roles, str(src))
    else:
        modules = _select(load_modules(src), roles, str(src))
    if dst_format == "worldjepa":
        return save_modules(dst, modules, dtype, overwrite)
    with new_folder(dst, overwrite, "model folder") as tmp:
        save_hf(modules, tmp, cast)
    return Path(dst)


def _check_destination(src: Path, dst: Path, overwrite: bool) -> None:
    """`dst` must be a new folder (or, with `overwrite`, a folder to replace) apart from `src`: converting
    in place would replace the source with part of it (`--part encoder` drops the predictor)."""
    source, destination = src.resolve(), dst.resolve()
    if source == destination or destination in source.parents:
        raise UserError(
            f"convert writes a new folder, and {dst} holds the source {src}; pick another destination"
        )
    check_new_folder(dst, overwrite, "model folder")
