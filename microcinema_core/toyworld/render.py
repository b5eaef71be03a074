"""Drawing toy-world frames with ``affine_grid``/``grid_sample``: camera views of a picture, and a cut-out
pasted over a scene. ``paste`` is the primitive subject-customisation pairs will use (a subject cut from one
photo placed into other scenes at other sizes and places).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` -> float ``[3, H, W]`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


def camera_views(picture: torch.Tensor, centre: np.ndarray, half: np.ndarray, angle: np.ndarray,
                 size: int) -> torch.Tensor:
    """Square views of ``picture [3, H, W]``: per frame a centre (x, y px), half-width (px) and rotation.

    Output pixel ``q`` in [-1, 1]^2 shows source pixel ``centre + half * R(angle) q``.
    """
    _, h, w = picture.shape
    n = len(half)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    cos, sin = np.cos(angle), np.sin(angle)
    theta[:, 0, 0] = torch.from_numpy(2 * half * cos / w)
    theta[:, 0, 1] = torch.from_numpy(-2 * half * sin / w)
    theta[:, 1, 0] = torch.from_numpy(2 * half * sin / h)
    theta[:, 1, 1] = torch.from_numpy(2 * half * cos / h)
    theta[:, 0, 2] = torch.from_numpy(2 * centre[:, 0] / w - 1)
    theta[:, 1, 2] = torch.from_numpy(2 * centre[:, 1] / h - 1)
    grid = F.affine_grid(theta.float(), [n, 3, size, size], align_corners=False)
    return F.grid_sample(picture.expand(n, -1, -1, -1), grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)


def soft_ellipse(height: int, width: int, softness: float = 0.12) -> torch.Tensor:
    """An alpha mask ``[1, H, W]``: 1 inside an ellipse touching the borders, fading out over ``softness``."""
    y = torch.linspace(-1, 1, height)[:, None]
    x = torch.linspace(-1, 1, width)[None, :]
    r = torch.sqrt(x ** 2 + y ** 2)
    return ((1 - r) / softness).clamp(0, 1)[None]


def paste(frames: torch.Tensor, cutout: torch.Tensor, alpha: torch.Tensor, centres: np.ndarray,
          scale: float) -> torch.Tensor:
    """Composite ``cutout [3, h, w]`` with ``alpha [1, h, w]`` over ``frames [N, 3, S, S]``.

    ``centres [N, 2]``: the cut-out's centre per frame in [-1, 1] frame coordinates; ``scale``: its width as
    a fraction of the frame's (height follows its aspect ratio).
    """
    n, _, size, _ = frames.shape
    _, ch, cw = cutout.shape
    sx = scale
    sy = scale * ch / cw
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1.0 / sx
    theta[:, 1, 1] = 1.0 / sy
    theta[:, 0, 2] = torch.from_numpy(-centres[:, 0] / sx).float()
    theta[:, 1, 2] = torch.from_numpy(-centres[:, 1] / sy).float()
    grid = F.affine_grid(theta, [n, 4, size, size], align_corners=False)
    layer = torch.cat([cutout, alpha]).expand(n, -1, -1, -1)
    drawn = F.grid_sample(layer, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    a = drawn[:, 3:]
    return frames * (1 - a) + drawn[:, :3] * a


def colour_jitter(frames: torch.Tensor, rng) -> torch.Tensor:
    """The same brightness / contrast / saturation change on every frame of a clip."""
    brightness = 1 + rng.uniform(-0.15, 0.15)
    contrast = 1 + rng.uniform(-0.2, 0.2)
    saturation = 1 + rng.uniform(-0.3, 0.3)
    grey = frames.mean(dim=1, keepdim=True)
    out = grey + (frames - grey) * saturation
    mean = out.mean(dim=(1, 2, 3), keepdim=True).mean(dim=0, keepdim=True)
    out = mean + (out - mean) * contrast
    return (out * brightness).clamp(0, 1)


def rotation_margin(angle_span: float) -> float:
    """How much larger than the view's half-width the picture must be for a view rotated by up to ``angle_span``."""
    a = min(abs(angle_span), math.pi / 4)
    return math.cos(a) + math.sin(a)
