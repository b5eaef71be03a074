"""Resumable training state: periodic, atomic, complete.

``<output_dir>/checkpoints/step_00001000.pt`` holds the model (full, unsharded state dict), optimizer,
LR scheduler, EMA, step, data position (``samples_seen``), RNG states (torch CPU/CUDA, numpy, Python, of
rank 0; the training randomness itself is derived from the step, see ``data_order``) and the run
config. Each file is written to a hidden temporary name, fsynced and moved into place with ``os.replace``
(``microcinema_core/atomic.py``): a crash leaves either the old or the new file, never half of one. Only the
last ``keep_last`` are kept.

State dicts go through ``torch.distributed.checkpoint.state_dict`` (full, CPU-offloaded), which works
the same for a plain module, DDP and FSDP.
"""
from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict, set_model_state_dict,
                                                     set_optimizer_state_dict)

from ..atomic import atomic_path

STATE_VERSION = 1
_NAME = re.compile(r"^step_(\d{8})\.pt$")


def checkpoint_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    folder = checkpoint_dir(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Optional[Path]:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuplify(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


_OPTS = StateDictOptions(full_state_dict=True, cpu_offload=True)


def save_training_state(path: Path, *, model, optimizer, scheduler, ema, step: int, samples_seen: int,
                        run_config: dict, world_size: int, is_main: bool) -> None:
    """Collective under FSDP (every rank calls it); only rank 0 writes."""
    model_state = get_model_state_dict(model, options=_OPTS)
    optim_state = get_optimizer_state_dict(model, optimizer, options=_OPTS)
    if not is_main:
        return
    state = {
        "version": STATE_VERSION, "step": step, "samples_seen": samples_seen, "world_size": world_size,
        "model": model_state, "optimizer": optim_state, "scheduler": scheduler.state_dict(),
        "ema": ema.state_dict() if ema is not None else None, "rng": rng_state(), "config": run_config,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def prune_checkpoints(output_dir: str | Path, keep_last: int) -> None:
    if keep_last <= 0:
        return
    for old in list_checkpoints(output_dir)[:-keep_last]:
        old.unlink(missing_ok=True)


def load_training_state(path: Path, *, model, optimizer, scheduler, ema) -> dict:
    """Restore everything into already-built objects; returns ``{"step", "samples_seen", ...}``."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("version", 0) > STATE_VERSION:
        raise ValueError(f"{path}: training state version {state['version']} is newer than this code")
    set_model_state_dict(model, state["model"], options=StateDictOptions(full_state_dict=True))
    set_optimizer_state_dict(model, optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True))
    scheduler.load_state_dict(state["scheduler"])
    if ema is not None:
        if state.get("ema") is None:
            raise ValueError(f"{path} was trained without EMA; set train.ema_decay=null to resume it")
        ema.load_state_dict(state["ema"])
    set_rng_state(state["rng"])
    if dist.is_initialized():
        dist.barrier()
    return {"step": int(state["step"]), "samples_seen": int(state["samples_seen"]),
            "world_size": int(state["world_size"]), "config": state.get("config")}
