"""A tiny autoencoder in the TAESD layout (Bohan Ollin Boer's TAESD, MIT, as its README describes it).

Encoder: 3x3 conv to 64 channels, then three stride-2 stages of residual blocks (64 channels), a 3x3 conv to
4 latent channels: 8x down-scaling. Decoder: a soft clamp (``3 tanh(x/3)``), 3x3 conv, three stages of
residual blocks each followed by 2x nearest up-sampling and a conv, a last block and a 3x3 conv to RGB.
A block is ``relu(conv(relu(conv(relu(conv(x))))) + skip(x))``. The encoder takes RGB in [0, 1] and the
decoder gives RGB in [0, 1].

The module names (``encoder.<i>.conv.<j>``, ``.skip``) follow that ``nn.Sequential`` numbering, so the
exported file's ``taesd_encoder.* / taesd_decoder.*`` keys are what ComfyUI's ``VAELoader`` recognises.

Latent spaces: the encoder's output ``e``; ComfyUI's LATENT ("raw", SD's space) is ``e / vae_scale``; the
MicroCinema U-Net's input is raw x 0.18215 (SD2.1's latent scale). ``vae_scale`` is chosen after training
so the U-Net's latents have unit standard deviation on training pictures.
"""
from __future__ import annotations

import torch
import torch.nn as nn

SD_LATENT_SCALE = 0.18215
LATENT_CHANNELS = 4
WIDTH = 64


def _conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class SoftClamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


class ResidualBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.conv = nn.Sequential(_conv(n_in, n_out), nn.ReLU(), _conv(n_out, n_out), nn.ReLU(), _conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x):
        return self.fuse(self.conv(x) + self.skip(x))


def build_encoder(width: int = WIDTH, latent: int = LATENT_CHANNELS) -> nn.Sequential:
    layers = [_conv(3, width), ResidualBlock(width, width)]
    for _ in range(3):
        layers += [_conv(width, width, stride=2, bias=False)] + [ResidualBlock(width, width) for _ in range(3)]
    layers.append(_conv(width, latent))
    return nn.Sequential(*layers)


def build_decoder(width: int = WIDTH, latent: int = LATENT_CHANNELS) -> nn.Sequential:
    layers = [SoftClamp(), _conv(latent, width), nn.ReLU()]
    for _ in range(3):
        layers += [ResidualBlock(width, width) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2), _conv(width, width, bias=False)]
    layers += [ResidualBlock(width, width), _conv(width, 3)]
    return nn.Sequential(*layers)


class ToyVAE(nn.Module):
    """Encoder + decoder + ``vae_scale``; ``encode``/``decode`` work in the U-Net's latent space."""

    def __init__(self):
        super().__init__()
        self.encoder = build_encoder()
        self.decoder = build_decoder()
        self.register_buffer("vae_scale", torch.tensor(1.0))

    @property
    def unet_factor(self) -> float:
        """U-Net latent = encoder output x this."""
        return SD_LATENT_SCALE / float(self.vae_scale)

    def encode(self, images01: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [0, 1] -> U-Net latents ``[B, 4, H/8, W/8]``."""
        return self.encoder(images01) * self.unet_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """U-Net latents -> images in [0, 1]."""
        return self.decoder(latents / self.unet_factor).clamp(0, 1)

    # ---- files ----------------------------------------------------------------------------------
    def comfy_state_dict(self, dtype: torch.dtype = torch.float16) -> dict:
        """The keys ComfyUI's stock ``VAELoader`` recognises as TAESD on both hosts."""
        out = {f"taesd_encoder.{k}": v for k, v in self.encoder.state_dict().items()}
        out.update({f"taesd_decoder.{k}": v for k, v in self.decoder.state_dict().items()})
        out = {k: v.detach().to("cpu", dtype).contiguous() for k, v in out.items()}
        out["vae_scale"] = self.vae_scale.detach().float().cpu().reshape(())
        out["vae_shift"] = torch.zeros(())  # the current host reads it (SD3/Flux TAESD); SD's latents are unshifted
        return out

    @classmethod
    def from_comfy_state_dict(cls, state: dict) -> "ToyVAE":
        vae = cls()
        vae.encoder.load_state_dict({k[len("taesd_encoder."):]: v.float() for k, v in state.items()
                                     if k.startswith("taesd_encoder.")})
        vae.decoder.load_state_dict({k[len("taesd_decoder."):]: v.float() for k, v in state.items()
                                     if k.startswith("taesd_decoder.")})
        vae.vae_scale.fill_(float(state["vae_scale"]))
        return vae

    @classmethod
    def load(cls, path) -> "ToyVAE":
        from safetensors.torch import load_file

        return cls.from_comfy_state_dict(load_file(str(path))).eval()
