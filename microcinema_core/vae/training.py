"""Training the toy VAE on photo crops (training pictures and frames of the training videos).

Per step: a batch of random square crops (random size, place, flip, colour), reconstructed through
encoder -> (latent + small Gaussian noise, so the decoder tolerates imperfect latents) -> decoder; loss
L1 + MSE, plus a small penalty on the latent's magnitude (keeps it inside the decoder's soft clamp).
AdamW with warm-up and cosine decay; bf16 autocast where the device runs it fast. Every draw comes from a
generator seeded by ``(seed, step)``, so a resumed run is the run that never stopped. At the end
``vae_scale`` is set so U-Net latents have unit standard deviation, and the ComfyUI file is written.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..atomic import atomic_path
from ..eval.image_metrics import ssim
from ..toyworld.render import colour_jitter
from ..toyworld.sources import Sources
from .taesd_layout import ToyVAE

STATE = "vae_state.pt"
EXPORT = "vae.safetensors"


@dataclass
class VAETrainConfig:
    steps: int = 800
    batch_size: int = 8
    size: int = 128
    lr: float = 5e-4
    warmup: int = 50
    latent_noise: float = 0.05
    latent_penalty: float = 1e-3
    seed: int = 0
    save_every: int = 200
    max_minutes: Optional[float] = None   # wall-clock budget: stop there, calibrate and export
    calibration_crops: int = 256          # crops that set vae_scale
    # a progressive phase starts from an earlier phase's weights: its ``vae_state.pt`` (fp32) or an exported
    # ``vae.safetensors``; used only when ``out_dir`` has no state of its own yet (a resumed run keeps its own)
    init: Optional[str] = None
    # + this x (1 - SSIM): the structure term the 128-px bundle's VAE bar is judged on (L1 + MSE alone blur texture)
    ssim_weight: float = 0.0
    # False: the encoder (and so the latent space and vae_scale the diffusion models were trained on) stays as
    # ``init`` has it and only the decoder learns: a sharper decode without retraining the base and the TSR
    train_encoder: bool = True
    # + this x the squared distance of the encoder's output from ``init``'s encoder on the same crops, relative to its
    # variance: the encoder learns more structure while its latent space stays the one the diffusion models know
    # (``vae_scale`` kept as ``init``'s). 0: off
    anchor_weight: float = 0.0


def photo_batch(sources: Sources, names: list, batch: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """Random square crops ``[B, 3, size, size]`` in [0, 1] of the named pictures and of training-video frames."""
    crops = []
    videos = sources.video_names("train")
    for _ in range(batch):
        if videos and rng.uniform() < 0.2:
            video = sources.videos[videos[int(rng.integers(len(videos)))]]
            image = video[int(rng.integers(len(video)))]
        else:
            image = sources.pictures[names[int(rng.integers(len(names)))]]
        h, w = image.shape[:2]
        side = int(min(h, w) * rng.uniform(0.35, 1.0))
        y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = torch.from_numpy(np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])).permute(2, 0, 1)
        crop = F.interpolate(crop[None].float() / 255.0, size=(size, size), mode="bilinear", antialias=True,
                             align_corners=False)[0]
        if rng.integers(2):
            crop = crop.flip(-1)
        crops.append(colour_jitter(crop[None], rng)[0])
    return torch.stack(crops)


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)


def _lr(step: int, cfg: VAETrainConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def train_vae(sources: Sources, out_dir: str | Path, cfg: VAETrainConfig, device: str | torch.device = "cpu",
              bf16: bool = False, stop_at: Optional[int] = None, progress=None) -> Path:
    """Train (or resume) in ``out_dir``; returns the exported ``vae.safetensors`` once ``cfg.steps`` are done."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    vae = ToyVAE().to(device)
    if not cfg.train_encoder and not cfg.init:
        raise ValueError("train_encoder=False keeps an earlier VAE's encoder: give init (its vae.safetensors)")
    if cfg.anchor_weight and not cfg.init:
        raise ValueError("anchor_weight keeps the encoder near an earlier VAE's: give init (its vae.safetensors)")
    anchor = _frozen_encoder(Path(cfg.init), device) if cfg.anchor_weight else None
    vae.encoder.requires_grad_(cfg.train_encoder)
    optimizer = torch.optim.AdamW([p for p in vae.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr(s, cfg))
    step = 0
    if (out / STATE).exists():
        state = torch.load(out / STATE, map_location="cpu", weights_only=True)
        vae.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
    elif cfg.init:
        vae.load_state_dict(initial_weights(Path(cfg.init)))
    # the init's latent scale where the latent space must stay (a resumed state carries it)
    kept_scale = float(vae.vae_scale) if (anchor is not None or not cfg.train_encoder) else None
    anchor_var = None if anchor is None else (float(vae.vae_scale) / 0.18215) ** 2   # the init's encoder variance
    names = sources.picture_names("train")
    end = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    vae.train()
    started = time.perf_counter()
    timed_out = False
    while step < end:
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, 7, step])
        images = photo_batch(sources, names, cfg.batch_size, cfg.size, rng).to(device)
        noise = torch.from_numpy(rng.standard_normal((cfg.batch_size, 4, cfg.size // 8, cfg.size // 8))).float()
        with _autocast(device, bf16):
            latent = vae.encoder(images)
            recon = vae.decoder(latent + cfg.latent_noise * noise.to(device))
        recon, latent = recon.float(), latent.float()
        loss = F.l1_loss(recon, images) + F.mse_loss(recon, images) + cfg.latent_penalty * latent.pow(2).mean()
        if cfg.ssim_weight:
            loss = loss + cfg.ssim_weight * (1.0 - ssim(recon, images).mean())
        if anchor is not None:
            with torch.no_grad(), _autocast(device, bf16):
                target = anchor(images)
            loss = loss + cfg.anchor_weight * F.mse_loss(latent, target.float()) / anchor_var
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        if progress is not None:
            progress(step, float(loss.detach()), cfg.batch_size / max(time.perf_counter() - t0, 1e-9))
        if cfg.max_minutes is not None and time.perf_counter() - started > 60.0 * cfg.max_minutes:
            timed_out, end = True, step
        if step % cfg.save_every == 0 or step == end:
            _save_state(out / STATE, vae, optimizer, scheduler, step, cfg)
    if step < cfg.steps and not timed_out:
        return out / STATE
    vae.eval()
    if kept_scale is None:
        calibrate_scale(vae, sources, names, cfg, device)
    else:   # the encoder did not change (or stayed anchored): the latent scale the diffusion models know stays
        vae.vae_scale.fill_(kept_scale)
    return export_vae(vae, out / EXPORT, cfg)


def _frozen_encoder(init: Path, device) -> torch.nn.Module:
    """``init``'s encoder, frozen: the latent space an anchored phase stays near."""
    reference = ToyVAE()
    reference.load_state_dict(initial_weights(init))
    return reference.encoder.to(device).eval().requires_grad_(False)


def initial_weights(path: Path) -> dict:
    """The ``ToyVAE`` state dict of an earlier phase: its training state (``vae_state.pt``) or exported file."""
    if not path.exists():
        raise FileNotFoundError(f"the VAE phase's init {path} does not exist: train the earlier phase first")
    if path.suffix == ".pt":
        return torch.load(path, map_location="cpu", weights_only=True)["model"]
    return ToyVAE.load(path).state_dict()


def _save_state(path: Path, vae, optimizer, scheduler, step: int, cfg: VAETrainConfig) -> None:
    with atomic_path(path) as tmp:
        torch.save({"model": vae.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "step": step, "config": asdict(cfg)}, tmp)


@torch.no_grad()
def calibrate_scale(vae: ToyVAE, sources: Sources, names: list, cfg: VAETrainConfig, device) -> float:
    """Set ``vae_scale`` = 0.18215 x std(encoder output) on training crops: U-Net latents get unit std."""
    rng = np.random.default_rng([cfg.seed, 11])
    batch = min(32, cfg.calibration_crops)
    outputs = [vae.encoder(photo_batch(sources, names, batch, cfg.size, rng).to(device)).float()
               for _ in range(max(1, cfg.calibration_crops // batch))]
    std = float(torch.cat(outputs).std())
    vae.vae_scale.fill_(0.18215 * std)
    return std


def export_vae(vae: ToyVAE, path: Path, cfg: VAETrainConfig) -> Path:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(vae.comfy_state_dict(), str(tmp), metadata={
            "microcinema.toy_vae": "1", "microcinema.vae_training": str(asdict(cfg)),
            "microcinema.latent_space": "LATENT = encoder(x01) / vae_scale (SD raw); U-Net input = LATENT x 0.18215",
        })
    return path


@torch.no_grad()
def reconstruction_psnr(vae: ToyVAE, frames: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """Per-image PSNR (dB) of decode(encode(x)) against ``frames [B, 3, H, W]`` in [0, 1]."""
    values = []
    for start in range(0, len(frames), batch):
        x = frames[start:start + batch]
        y = vae.decode(vae.encode(x))
        mse = (y - x).pow(2).flatten(1).mean(1).clamp_min(1e-10)
        values.append(10 * torch.log10(1.0 / mse))
    return torch.cat(values)
