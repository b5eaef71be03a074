"""Reading state dicts from disk (safetensors or pickle .ckpt) and writing files atomically."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from ..atomic import atomic_path
from ..errors import CheckpointError


def read_state_dict(path) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """``(tensors, metadata)`` from ``.safetensors`` or ``.ckpt/.pt/.pth`` (weights-only unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # truncated files, wrong format: safetensors raises several types
            raise CheckpointError(
                f"{path.name} could not be read as safetensors ({exc}); the file is truncated or not a "
                "safetensors file: download or export it again"
            ) from exc
        return tensors, metadata
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise pickle_load_error(path, exc) from None
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise CheckpointError(f"{path.name} holds a {type(data).__name__}, not a state dict")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}, {}


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def pickle_load_error(path: Path, exc: Exception) -> CheckpointError:
    """What to tell a user whose .ckpt/.pt torch refused to load with ``weights_only=True``.

    Never torch's own text: it prints terminal escape codes and advises ``weights_only=False``, which runs
    whatever code the pickle carries. Instead: what the file holds, and how to turn it into safetensors.
    """
    text = _ANSI.sub("", str(exc))
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found is None:
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
        detail = detail.group(1).strip() if detail else (text.strip().splitlines() or [""])[0]
        detail = detail.split(". ")[0]
        return CheckpointError(f"{path.name} could not be read as a PyTorch checkpoint ({type(exc).__name__}: "
                               f"{detail[:200]}): the file is truncated, not a checkpoint, or uses pickle features "
                               "that only an unsafe load reads, so it was NOT loaded. Download it again or use a "
                               ".safetensors file (SD2.1-base is published as v2-1_512-ema-pruned.safetensors).")
    name = found.group(1) if found else None
    module, _, attr = (name or "").rpartition(".")
    what = f"it also holds the Python object {name}" if name else "it holds more than tensors"
    head = (f"{path.name} is a pickle checkpoint and {what}, so it was NOT loaded: unpickling such objects can "
            "run code. Use a .safetensors file instead (SD2.1-base is published as "
            "v2-1_512-ema-pruned.safetensors)")
    if not module or module == "__main__":
        return CheckpointError(head + ", or re-export the weights as .safetensors with the tool that made this file.")
    return CheckpointError(
        head + ", or, only if you trust where this file came from, convert it once in a separate Python (with "
        f"{module.split('.')[0]} installed), keeping only its tensors:\n"
        f"  import torch, safetensors.torch as st; from {module} import {attr}\n"
        f"  with torch.serialization.safe_globals([{attr}]): sd = torch.load(\"{path.name}\", weights_only=True)\n"
        "  sd = sd.get(\"state_dict\", sd)\n"
        f"  st.save_file({{k: v.contiguous() for k, v in sd.items() if torch.is_tensor(v)}}, \"{path.stem}.safetensors\")\n"
        "then choose the .safetensors file.")


def atomic_save_safetensors(tensors: Dict[str, torch.Tensor], path, metadata: Optional[Dict[str, str]] = None) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
