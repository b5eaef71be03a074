"""Frechet Video Distance (Unterthiner et al., "Towards Accurate Generative Models of Video", 2018).

What the reference implementation (google-research ``frechet_video_distance``) does, and this module repeats:

1. **preprocessing**: every frame resized to 224x224 with TensorFlow 1's ``tf.image.resize_bilinear``
   (``align_corners=False`` without half-pixel centres: source coordinate = ``dst * in / out``, no antialiasing,
   aspect ratio not kept), then pixel values ``v`` in [0, 255] mapped to ``2 v / 255 - 1``;
2. **embedding**: the 400 logits of DeepMind's I3D trained on Kinetics-400 (``i3d.py``; the TF-Hub module's
   default output, before the softmax), one vector per clip (16 frames in the paper);
3. **distance**: Gaussians fitted to the two sets of embeddings (mean, covariance with ``n - 1``) and
   ``|mu_1 - mu_2|^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2))``.

The trace of the matrix square root is computed in float64 from symmetric eigen-decompositions:
``tr((S_1 S_2)^(1/2)) = tr((A S_2 A)^(1/2))`` with ``A = S_1^(1/2)``, and ``A S_2 A`` is symmetric positive
semi-definite, so its square root's trace is the sum of the square roots of its (clipped at 0) eigenvalues:
no complex numbers, no NaN when the covariances are singular (they always are with fewer than 401 clips).
Fewer than 2 clips in a set leave the covariance undefined: that raises ``ValueError``.

Note on comparability: FVD is biased by the number of clips (papers use 2,048 or more per set); compare
numbers only at equal set sizes, equal clip length and the same preprocessing. Many PyTorch FVD ports resize
differently (half-pixel or antialiased): their numbers differ from the reference's.
"""
from __future__ import annotations

import numpy as np
import torch

SIZE = 224


def tf1_resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1 ``tf.image.resize_bilinear(align_corners=False)`` of ``[B, C, H, W]`` (legacy, no half-pixel offset)."""
    out_h, out_w = size
    in_h, in_w = x.shape[-2:]
    if (in_h, in_w) == (out_h, out_w):
        return x

    def axis(n_in, n_out):
        src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        frac = (src - lo.double()).to(x.dtype).to(x.device)
        return lo.to(x.device), hi.to(x.device), frac

    y0, y1, fy = axis(in_h, out_h)
    x0, x1, fx = axis(in_w, out_w)
    top_rows, bottom_rows = x[..., y0, :], x[..., y1, :]
    top = top_rows[..., x0] + (top_rows[..., x1] - top_rows[..., x0]) * fx
    bottom = bottom_rows[..., x0] + (bottom_rows[..., x1] - bottom_rows[..., x0]) * fx
    return top + (bottom - top) * fy[:, None]


def _as_float255(video) -> torch.Tensor:
    """``[T, H, W, 3]`` uint8 (0..255) or float (0..1) -> float32 ``[T, 3, H, W]`` in 0..255."""
    v = torch.as_tensor(np.asarray(video) if not isinstance(video, torch.Tensor) else video)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"a video must be [T, H, W, 3] (RGB, channels last); got {tuple(v.shape)}")
    if v.dtype == torch.uint8:
        v = v.float()
    else:
        v = v.float() * 255.0
    return v.permute(0, 3, 1, 2)


def preprocess(videos, size: int = SIZE, resize: str = "tf1") -> torch.Tensor:
    """Videos -> I3D input ``[N, 3, T, size, size]`` in [-1, 1].

    ``videos``: ``[N, T, H, W, 3]`` array/tensor or a sequence of ``[T, H, W, 3]`` (same T); uint8 is read as
    0..255, floats as 0..1 (ComfyUI's IMAGE). ``resize``: ``"tf1"`` (the reference's) or ``"bilinear"``
    (PyTorch half-pixel, antialiased when shrinking) for comparison with other ports.
    """
    out = []
    for video in videos:
        frames = _as_float255(video)
        if resize == "tf1":
            frames = tf1_resize_bilinear(frames, (size, size))
        elif resize == "bilinear":
            frames = torch.nn.functional.interpolate(frames, (size, size), mode="bilinear", align_corners=False,
                                                     antialias=True).clamp(0, 255)
        else:
            raise ValueError(f"resize must be 'tf1' or 'bilinear', got {resize!r}")
        out.append((2.0 * frames / 255.0 - 1.0).permute(1, 0, 2, 3))
    if not out:
        raise ValueError("no videos given")
    lengths = {v.shape[1] for v in out}
    if len(lengths) != 1:
        raise ValueError(f"all clips must have the same number of frames, got {sorted(lengths)}")
    return torch.stack(out)


@torch.inference_mode()
def i3d_embeddings(videos, model=None, batch_size: int = 4, device=None, resize: str = "tf1") -> np.ndarray:
    """FVD embeddings ``[N, 400]`` (float64): I3D logits of the preprocessed clips, ``batch_size`` at a time."""
    if model is None:
        from .i3d import load_i3d

        model = load_i3d(device=device or "cpu")
    param = next(model.parameters())
    videos = list(videos)
    chunks = []
    for start in range(0, len(videos), batch_size):
        x = preprocess(videos[start:start + batch_size], resize=resize).to(device=param.device, dtype=param.dtype)
        chunks.append(model(x).double().cpu().numpy())
    feats = np.concatenate(chunks) if chunks else np.zeros((0, 400))
    if not np.isfinite(feats).all():
        raise ValueError("I3D produced non-finite embeddings (NaN/inf in the input videos?)")
    return feats


def fit_gaussian(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``n - 1``) of ``[N, D]`` features; needs N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"FVD needs at least 2 clips per set to fit a covariance, got {f.shape[0]} "
                         "(the paper's protocol uses 2,048 or more; small sets give biased, high-variance values)")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or inf")
    mu = f.mean(axis=0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), computed stably (see module docstring)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"shape mismatch: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    return max(value, 0.0)


def fvd_from_features(features_a, features_b) -> float:
    """FVD between two sets of I3D embeddings ``[N, 400]`` and ``[M, 400]`` (N, M >= 2)."""
    fa, fb = np.asarray(features_a), np.asarray(features_b)
    for name, f in (("first", fa), ("second", fb)):
        if f.ndim != 2 or f.shape[0] < 2:
            got = f.shape[0] if f.ndim == 2 else f"shape {f.shape}"
            raise ValueError(f"FVD needs at least 2 clips in each set; the {name} set has {got}")
    return frechet_distance(*fit_gaussian(fa), *fit_gaussian(fb))


def fvd(videos_a, videos_b, model=None, batch_size: int = 4, device=None, resize: str = "tf1") -> float:
    """FVD between two sets of videos (each ``[N, T, H, W, 3]`` or a sequence of ``[T, H, W, 3]``; uint8 0..255
    or float 0..1). Both sets need at least 2 clips; the paper's numbers use 16-frame clips and 2,048+ per set."""
    videos_a, videos_b = list(videos_a), list(videos_b)
    if len(videos_a) < 2 or len(videos_b) < 2:
        raise ValueError(f"FVD needs at least 2 clips in each set; got {len(videos_a)} and {len(videos_b)}")
    if model is None:
        from .i3d import load_i3d

        model = load_i3d(device=device or "cpu")
    fa = i3d_embeddings(videos_a, model, batch_size, resize=resize)
    fb = i3d_embeddings(videos_b, model, batch_size, resize=resize)
    return fvd_from_features(fa, fb)
