"""The paper's metrics whose networks are not on the package registries: the user brings the weights.

* **CLIPSIM** (Wu et al., GODIVA 2021; the paper's MSR-VTT column): mean over frames of the cosine similarity
  between CLIP's image embedding of the frame and its text embedding of the caption. ``load_clip(DIR)`` takes a
  Hugging Face CLIP folder (``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, tokenizer files),
  e.g. ``openai/clip-vit-base-patch32`` saved locally; needs the ``transformers`` package. Frames: short side
  resized to the model's image size (bicubic), centre crop, CLIP's mean/std.
* **IS** (Inception Score on UCF-101, as TGAN (Saito et al. 2017) and the paper use it): ``exp(E_x KL(p(y|x) ||
  p(y)))`` over the 101 classes of a **C3D** (Tran et al. 2015) trained on UCF-101, mean and std over splits.
  ``load_c3d(FILE)`` takes a ``.safetensors`` with the usual C3D names (``conv1``, ``conv2``, ``conv3a``,
  ``conv3b``, ``conv4a``, ``conv4b``, ``conv5a``, ``conv5b``, ``fc6``, ``fc7``, ``fc8`` with 101 outputs) and
  optionally ``mean`` (3 values, RGB 0..255, subtracted). Clips: 16 frames, centre-cropped square, resized to
  112x112, RGB 0..255. Published IS values are comparable only with the same C3D weights and preprocessing.

Neither network's weights exist on the registries, so these are hooks: given a missing path they raise
``FileNotFoundError`` naming what to supply.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
C3D_FRAMES, C3D_SIZE, UCF101_CLASSES = 16, 112, 101


# ------------------------------------------------------------------------------------------------ CLIPSIM
def load_clip(path, device="cpu"):
    path = Path(path)
    if not path.is_dir() or not (path / "config.json").is_file():
        raise FileNotFoundError(f"--clip-model {path}: expected a Hugging Face CLIP folder with config.json, "
                                "the weights and the tokenizer (CLIP weights are not on the package registries)")
    try:
        from transformers import AutoTokenizer, CLIPModel
    except ImportError as err:
        raise ImportError("CLIPSIM needs the transformers package: pip install 'transformers<5'") from err
    model = CLIPModel.from_pretrained(str(path), local_files_only=True).eval().to(device)
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return model, tokenizer


def clip_preprocess(frames: np.ndarray, size: int) -> torch.Tensor:
    x = torch.from_numpy(np.array(frames, copy=True)).permute(0, 3, 1, 2).float() / 255
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    x = F.interpolate(x, size=(max(size, round(h * scale)), max(size, round(w * scale))), mode="bicubic",
                      align_corners=False, antialias=True).clamp(0, 1)
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    x = x[..., top:top + size, left:left + size]
    return (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)


@torch.no_grad()
def clipsim(frames: np.ndarray, text: str, clip) -> float:
    """Mean CLIP cosine similarity between each frame (``[T, H, W, 3]`` uint8) and the text."""
    model, tokenizer = clip
    device = next(model.parameters()).device
    pixels = clip_preprocess(frames, model.config.vision_config.image_size).to(device)
    tokens = tokenizer([text], padding=True, truncation=True, return_tensors="pt").to(device)
    image = F.normalize(model.get_image_features(pixel_values=pixels).float(), dim=-1)
    words = F.normalize(model.get_text_features(**tokens).float(), dim=-1)
    return float((image @ words.T).mean())


# ------------------------------------------------------------------------------------------------ IS / C3D
class C3D(nn.Module):
    """C3D (Tran et al. 2015): eight 3x3x3 convolutions, five max-pools, three fully connected layers."""

    def __init__(self, num_classes: int = UCF101_CLASSES):
        super().__init__()
        widths = (("conv1", 3, 64), ("conv2", 64, 128), ("conv3a", 128, 256), ("conv3b", 256, 256),
                  ("conv4a", 256, 512), ("conv4b", 512, 512), ("conv5a", 512, 512), ("conv5b", 512, 512))
        for name, cin, cout in widths:
            setattr(self, name, nn.Conv3d(cin, cout, 3, padding=1))
        self.fc6, self.fc7, self.fc8 = nn.Linear(8192, 4096), nn.Linear(4096, 4096), nn.Linear(4096, num_classes)
        self.register_buffer("mean", torch.zeros(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 16, 112, 112]`` RGB 0..255 -> logits."""
        x = x - self.mean.view(1, 3, 1, 1, 1)
        x = F.max_pool3d(F.relu(self.conv1(x)), (1, 2, 2))
        x = F.max_pool3d(F.relu(self.conv2(x)), 2)
        x = F.max_pool3d(F.relu(self.conv3b(F.relu(self.conv3a(x)))), 2)
        x = F.max_pool3d(F.relu(self.conv4b(F.relu(self.conv4a(x)))), 2)
        x = F.max_pool3d(F.relu(self.conv5b(F.relu(self.conv5a(x)))), 2, padding=(0, 1, 1))
        x = F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))
        return self.fc8(x)


def load_c3d(path, device="cpu") -> C3D:
    path = Path(path)
    if not path.is_file() or path.suffix != ".safetensors":
        raise FileNotFoundError(f"--c3d-model {path}: expected a .safetensors C3D trained on UCF-101 (not on the "
                                "package registries; convert a PyTorch state dict with safetensors.torch.save_file)")
    from safetensors.torch import load_file

    state = load_file(str(path))
    model = C3D(num_classes=state["fc8.weight"].shape[0] if "fc8.weight" in state else UCF101_CLASSES)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "mean"]
    if missing or unexpected:
        raise ValueError(f"{path} is not a C3D state dict: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval().to(device)


def c3d_preprocess(video: np.ndarray) -> torch.Tensor:
    """``[T >= 16, H, W, 3]`` uint8 -> ``[3, 16, 112, 112]`` RGB 0..255 (first 16 frames, centre square)."""
    if len(video) < C3D_FRAMES:
        raise ValueError(f"IS on C3D needs {C3D_FRAMES} frames per clip; got {len(video)}")
    x = torch.from_numpy(np.array(video[:C3D_FRAMES], copy=True)).permute(0, 3, 1, 2).float()
    h, w = x.shape[-2:]
    s = min(h, w)
    x = x[..., (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    x = F.interpolate(x, size=(C3D_SIZE, C3D_SIZE), mode="bilinear", align_corners=False, antialias=True)
    return x.permute(1, 0, 2, 3)


def inception_score_from_probs(probs: np.ndarray, splits: int = 10) -> dict:
    """``exp(mean KL(p(y|x) || p(y)))`` per split; mean and std over the splits."""
    probs = np.asarray(probs, dtype=np.float64)
    splits = max(1, min(splits, len(probs)))
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(1)
        scores.append(float(np.exp(kl.mean())))
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "splits": splits, "n": int(len(probs))}


@torch.no_grad()
def inception_score(videos: list, model: C3D, splits: int = 10, batch_size: int = 4) -> dict:
    device = next(model.parameters()).device
    x = torch.stack([c3d_preprocess(v) for v in videos])
    probs = torch.cat([model(x[i:i + batch_size].to(device)).softmax(-1).cpu() for i in range(0, len(x), batch_size)])
    return inception_score_from_probs(probs.numpy(), splits)
