"""Interop: official I-JEPA / V-JEPA / V-JEPA 2(-AC) checkpoints, our model folder, Hugging Face transformers.

- `load_official(path, part)`: an official checkpoint entry as our module, architecture inferred.
- `save_modules` / `load_modules`: our folder format (safetensors + config.json, fp32 or bf16).
- `to_hf` / `from_hf` / `save_hf` / `load_hf`: IJepaModel and VJEPA2Model (transformers is optional).
- `convert(src, dst, src_format, dst_format, part, dtype)`: any of those to our folder or to transformers.
- `describe(state_dict)`, `infer_architecture(state_dict)`: what a set of weights is.
Every file is read without unpickling code (`load_torch_file`).
"""

from worldjepa.interop.architecture import Architecture, architecture_of, describe, infer_architecture
from worldjepa.interop.convert import convert
from worldjepa.interop.hf import from_hf, load_hf, save_hf, to_hf
from worldjepa.interop.official import build_official, load_official, load_official_state
from worldjepa.interop.safe_load import load_torch_file
from worldjepa.interop.worldjepa_format import load_modules, read_config, save_modules

__all__ = [
    "Architecture",
    "architecture_of",
    "build_official",
    "convert",
    "describe",
    "from_hf",
    "infer_architecture",
    "load_hf",
    "load_modules",
    "load_official",
    "load_official_state",
    "load_torch_file",
    "read_config",
    "save_hf",
    "save_modules",
    "to_hf",
]
