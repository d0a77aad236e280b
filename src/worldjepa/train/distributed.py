"""Multi-process training with `torchrun`: one process per device, gradients averaged by DDP.

Launch: `torchrun --nproc_per_node N -m worldjepa ...`. torchrun sets RANK, WORLD_SIZE and LOCAL_RANK;
without them the run is a single process and every helper here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process logs, shows progress and writes checkpoints."""
        return self.rank == 0


def dist_info() -> DistInfo:
    """Read the torchrun environment variables (defaults: a single process)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init_distributed(info: DistInfo, device: torch.device) -> None:
    """Join the process group: NCCL for CUDA devices, gloo for CPU. No-op for a single process."""
    if not info.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        # binding the device lets NCCL collectives (barrier included) use the right GPU from the start
        dist.init_process_group("nccl", rank=info.rank, world_size=info.world_size, device_id=device)
    else:
        dist.init_process_group("gloo", rank=info.rank, world_size=info.world_size)


def wrap_ddp(module: torch.nn.Module, device: torch.device, find_unused_parameters: bool) -> torch.nn.Module:
    """Wrap in DistributedDataParallel when the process group is up; otherwise return `module` unchanged.

    Frozen parameters (the EMA target) are not synchronised by DDP; DDP broadcasts all parameters and
    buffers from rank 0 once, so every rank starts from the same weights.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(
        module, device_ids=device_ids, find_unused_parameters=find_unused_parameters
    )


def mean_across_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over all ranks (a copy; unchanged for a single process)."""
    if not dist.is_initialized():
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (collective: all ranks must call it)."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group (safe to call when none was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()
