"""Locate and load the official-implementation oracle vectors (../shared/oracle from the repo root)."""

import os
from pathlib import Path

import pytest
import torch

ORACLE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "oracle"


def load_oracle(name: str) -> dict:
    """The oracle file `name`.pt; skip when absent, except on CI (CI=true), where it must exist."""
    path = ORACLE_DIR / f"{name}.pt"
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"oracle file {path} is missing on CI")
        pytest.skip(f"oracle file {path} not found")
    return torch.load(path, weights_only=True)
