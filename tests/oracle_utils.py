"""Locate and load the official-implementation oracle vectors (../shared/oracle from the repo root).

WORLDJEPA_ORACLE_DIR points elsewhere (a GPU machine gets a copy); WORLDJEPA_TEST_DEVICE=cuda runs the
parity tests on a GPU (TF32 off, so float32 keeps its 1e-5 tolerance).
"""

import os
from pathlib import Path

import pytest
import torch

ORACLE_DIR = Path(
    os.environ.get("WORLDJEPA_ORACLE_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "oracle")
)
TEST_DEVICE = torch.device(os.environ.get("WORLDJEPA_TEST_DEVICE", "cpu"))
if TEST_DEVICE.type == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def load_oracle(name: str, device: torch.device | str = "cpu") -> dict:
    """The oracle file `name`.pt with its tensors on `device`; skip when absent, except on CI (CI=true),
    where it must exist."""
    path = ORACLE_DIR / f"{name}.pt"
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"oracle file {path} is missing on CI")
        pytest.skip(f"oracle file {path} not found")
    return torch.load(path, weights_only=True, map_location=device)
