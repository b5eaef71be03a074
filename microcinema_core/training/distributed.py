"""Scale-out on PyTorch's own engines: one code path for one process or many.

Under ``torchrun`` (``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` set) the process group uses NCCL on GPUs and
Gloo on CPU. A plain ``python -m ...`` run makes a one-process Gloo/NCCL group on a file store, so the
model is wrapped the same way (DDP, or FSDP with ``train.parallel = "fsdp"``) in both cases and the
same loop runs. FSDP is FSDP2 (``fully_shard``): parameters, gradients and Adam state sharded
over processes, for when 2 B parameters plus optimizer state do not fit one GPU. DDP averages gradients over processes, so B per process x P processes updates exactly
like one process with batch P x B (the per-sample loss is a mean; see ``data_order``).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn as nn


@dataclass
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str
    owns_group: bool  # this code created the process group and must destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def process_device(device: Optional[str], local_rank: int) -> torch.device:
    """This process's device: ``None`` picks its GPU (``cuda:<LOCAL_RANK>``) or the CPU; a bare ``"cuda"`` (the CLIs'
    ``--device cuda``) gets the index, which ``torch.cuda.set_device`` requires."""
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    return torch.device("cuda", local_rank) if dev.type == "cuda" and dev.index is None else dev


def init_distributed(device: Optional[str] = None) -> DistContext:
    """Join (or make) the process group and pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = process_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    owns = False
    if not dist.is_initialized():
        if "MASTER_ADDR" in os.environ and world >= 1 and "RANK" in os.environ:
            dist.init_process_group(backend=backend, rank=rank, world_size=world, device_id=dev if dev.type == "cuda" else None)
        else:  # single process, no launcher: a private file store, no network
            fd, store = tempfile.mkstemp(prefix="microcinema_pg_")
            os.close(fd)
            os.unlink(store)
            dist.init_process_group(backend=backend, init_method=f"file://{store}", rank=0, world_size=1)
            world, rank, local_rank = 1, 0, 0
        owns = True
    else:
        world, rank = dist.get_world_size(), dist.get_rank()
        backend = dist.get_backend()
    return DistContext(rank, world, local_rank, dev, backend, owns)


def wrap_model(model: nn.Module, ctx: DistContext, parallel: str, find_unused: bool = False) -> nn.Module:
    """DDP (default) or FSDP around a model already on ``ctx.device``."""
    if parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        return DDP(model, device_ids=ids, find_unused_parameters=find_unused)
    if parallel == "fsdp":
        # FSDP2 (per-parameter sharding, DTensor): works on CUDA/NCCL and on CPU/Gloo alike
        from torch.distributed.fsdp import fully_shard

        from ..models.blocks import VideoBlock  # one shard unit per U-Net / AppearNet block

        with torch.no_grad():  # FSDP2 shards contiguous storage; the model keeps some convs channels_last
            for param in model.parameters():
                if not param.is_contiguous():
                    param.data = param.data.contiguous()
        for module in list(model.modules()):
            if isinstance(module, VideoBlock):
                fully_shard(module)
        fully_shard(model)
        return model
    raise ValueError(f"train.parallel must be 'ddp' or 'fsdp', got {parallel!r}")


def unwrap(model: nn.Module) -> nn.Module:
    while hasattr(model, "module"):
        model = model.module
    return model


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    value = value.detach().clone()
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= dist.get_world_size()
    return value


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()
