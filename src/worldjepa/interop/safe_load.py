"""Read `torch.save` files without running code from them.

A pickle can name any importable callable and have the unpickler call it: loading an untrusted
checkpoint with full unpickling is running untrusted code. Every checkpoint worldjepa reads goes
through `load_torch_file`, which uses `torch.load(weights_only=True)`: only tensors, containers and
plain values are rebuilt; anything else is refused before it runs.
"""

import pickle
from pathlib import Path
from typing import Any

import torch

from worldjepa.errors import UserError


def reason(error: Exception) -> str:
    """The first sentence of torch's refusal that names the blocked global (else its first line).

    Its advice to allowlist the global is left out on purpose: that would run the code.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    line = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line), lines[0])
    return line.split(". ")[0]


def load_torch_file(path: str | Path) -> Any:
    """The contents of a `.pt` / `.pth.tar` file, tensors on the CPU; pickled code is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist or is not a file; pass the path of a checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UserError(
            f"{path} contains pickled Python objects that weights_only loading refuses: {reason(error)}; "
            "worldjepa never runs code from a checkpoint — re-save it as plain tensors or safetensors"
        ) from None
    except (RuntimeError, EOFError) as error:
        raise UserError(
            f"{path} is not a readable torch checkpoint ({error}); check the file is complete"
        ) from None
