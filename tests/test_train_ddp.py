"""Two CPU processes (gloo) under torchrun compute the gradients of one process on the same global batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ddp_worker import ToyDataset, ToyMethod, grads, toy_config
from worldjepa.train import Trainer

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow
def test_two_process_gradients_match_single_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(
        [*cmd, str(WORKER), str(tmp_path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = torch.load(tmp_path / "grads.pt", weights_only=True)

    # same init (seed 0), same global micro-batches: 8 samples = rank 0's 4 + rank 1's 4, 2 micro-batches
    torch.manual_seed(0)
    single = ToyMethod(stochastic=False)
    Trainer(single, ToyDataset(64), None, toy_config(batch_size=8), tmp_path / "single").fit()

    g = grads(single)
    assert g.keys() == ddp["grads"].keys()
    for name in g:
        torch.testing.assert_close(ddp["grads"][name], g[name], rtol=0, atol=1e-6)
    for name, p in single.named_parameters():
        torch.testing.assert_close(ddp["params"][name], p.detach(), rtol=0, atol=1e-6)
