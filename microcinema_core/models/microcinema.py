"""The MicroCinema image&text-to-video network: 3D U-Net + AppearNet + injection (paper fig. 2).

``forward(x, timesteps, context, appearance, num_frames) -> eps`` with frames in the batch dimension.
The network predicts the whole training noise ``lambda*z^c + eps_n`` (eq. 5), so samplers treat it
as an ordinary eps-prediction model and only their start changes (appendix B).

``config.prediction == "v"``: the network's head predicts ``v = sqrt(abar_t) eps - sqrt(1-abar_t) z_0``
(Salimans & Ho 2022; SD2.1-768's parameterisation) and ``forward`` returns
``eps = sqrt(1-abar_t) z_t + sqrt(abar_t) v`` (fp32), so every sampler and host still sees an eps model.
Training it with the v error (``training/objective.py``) gives the high-noise steps, where the text alone
must say which way the clip moves, the weight ``1/abar_t`` (up to ~200x) that the eps error lacks.

``config.prediction == "x0_residual"`` (not in the paper; the toy TSR): the head predicts the clean clip's
difference from AppearNet's input, ``z_0 = a + head``, and ``forward`` returns
``eps = (z_t - sqrt(abar_t) z_0) / sqrt(1-abar_t)`` (fp32). The head's output conv starts at zero, so an untrained
TSR already predicts the first/last interpolation ``a`` (the linear blend) and training learns only what the
blend misses. Trained with the min-SNR-weighted z_0 error (``training/objective.py``).

``interrupt_check``: a callable (or None) that the forward pass calls before every block of AppearNet and
of the main branch; a host sets it to its Cancel check (ComfyUI's nodes set
``comfy.model_management.throw_exception_if_processing_interrupted``), so one huge step stops within a
block. The core never imports a host: it only calls what it was given.

``operations``: the namespace the weighted layers are built from (``nn/ops.py``; None: plain ``torch.nn``).
The ComfyUI nodes pass ComfyUI's own ``comfy.ops`` so it can cast weights on the fly and load the network
partially. ``compute_dtype``: the dtype the activations run in; None means the weights' dtype. Set it when
the weights are stored in a dtype the arithmetic does not run in (fp8 storage, computed in fp16/bf16/fp32;
this needs a namespace whose layers cast their weights, such as ``comfy.ops.manual_cast``).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from ..config import MicroCinemaConfig
from ..diffusion.schedule import DiscreteSchedule
from ..errors import MicroCinemaInputError
from ..nn.ops import resolve_operations
from .appearnet import AppearanceInjection, AppearNet
from .prior_share_embedding import PriorShareEmbedding
from .text_frame_embedding import TextFrameEmbedding
from .unet3d import UNet3D

NEW_LAYER_MARKERS = ("temporal_", "spade", "injection.", "text_frame_embed.", "prior_share_embed.")


class MicroCinemaModel(nn.Module):
    interrupt_check: Optional[Callable[[], None]] = None  # see the module docstring
    compute_dtype: Optional[torch.dtype] = None  # see the module docstring
    # training only: accept one-frame "videos" (the customisation objective's image batches; their temporal
    # layers pass them through). Hosts keep the default: a video has at least 2 frames
    single_frames: bool = False

    def __init__(self, config: MicroCinemaConfig, operations=None):
        super().__init__()
        self.config = config
        self.operations = ops = resolve_operations(operations)
        concat = config.injection == "concat"
        self.unet = UNet3D(config, extra_in_channels=config.in_channels if concat else 0,
                           spade=config.injection == "add_encdec_spade", operations=ops)
        if concat:
            # the extra input channels (the appearance sequence) start at zero: SD2.1 at init
            with torch.no_grad():
                self.unet.input_blocks[0][0].weight[:, config.in_channels:].zero_()
            self.appearnet = None
            self.injection = None
        else:
            self.appearnet = AppearNet(config, operations=ops)
            self.injection = AppearanceInjection(config, operations=ops)
        if config.prediction == "x0_residual":
            # the correction to the interpolation starts at zero: the untrained model returns the blend
            with torch.no_grad():
                self.unet.out[2].weight.zero_()
                if self.unet.out[2].bias is not None:
                    self.unet.out[2].bias.zero_()
        self.text_frame_embed = TextFrameEmbedding(config, operations=ops) if config.text_frame_embedding else None
        self.prior_share_embed = (PriorShareEmbedding(config, operations=ops) if config.prior_share_embedding
                                  else None)
        self.use_channels_last()

    @property
    def weight_dtype(self) -> torch.dtype:
        """The dtype the layers' weight matrices are stored in (fp8 when stored so)."""
        return self.unet.out[2].weight.dtype

    @property
    def activation_dtype(self) -> torch.dtype:
        """The dtype the forward pass computes in: ``compute_dtype``, else the weights' dtype."""
        return self.compute_dtype or self.weight_dtype

    def with_operations(self, operations) -> "MicroCinemaModel":
        """The same network with its layers rebuilt from ``operations``, holding the SAME tensors (no copy).

        Built on the ``meta`` device and given this model's tensors, so a namespace that skips weight
        initialisation (ComfyUI's) never leaves a layer uninitialised. The state-dict keys do not change.
        """
        with torch.device("meta"):
            other = MicroCinemaModel(self.config, operations=operations)
        other.load_state_dict(self.state_dict(), assign=True)
        other.compute_dtype = self.compute_dtype
        other.interrupt_check = self.interrupt_check
        other.enable_gradient_checkpointing(self.unet.gradient_checkpointing)
        return other.train(self.training)

    def use_channels_last(self) -> "MicroCinemaModel":
        """Store convolution weights channels-last, the layout oneDNN runs fastest on CPU (no per-call reorder)."""
        layouts = {4: torch.channels_last, 5: torch.channels_last_3d}
        for param in self.parameters():
            if param.ndim in layouts:
                param.data = param.data.contiguous(memory_format=layouts[param.ndim])
        return self

    # ---- training helpers ----------------------------------------------------------------------
    def enable_gradient_checkpointing(self, enabled: bool = True) -> None:
        self.unet.gradient_checkpointing = enabled
        if self.appearnet is not None:
            self.appearnet.gradient_checkpointing = enabled

    def parameter_groups(self) -> Dict[str, List[nn.Parameter]]:
        """``pretrained``: layers initialised from SD2.1's weights: the main branch's spatial layers AND
        AppearNet's spatial layers (its copy of the encoder and middle). ``new``: temporal, SPADE and injection
        layers (zero-initialised), in both branches.

        Training (``training/optim.py``) gives ``new`` the paper's 2e-5 and ``pretrained`` one tenth, 2e-6
        (sec. 4, app. C: temporal modules 2e-5, spatial model 10x smaller). The paper does not name AppearNet:
        its spatial layers take 2e-6 because they start from the same pretrained weights as the main spatial
        layers. Trained from scratch, ``spatial_lr_scale=1.0`` gives both groups the same rate."""
        groups = {"pretrained": [], "new": []}
        for name, param in self.named_parameters():
            groups["new" if is_new_layer(name) else "pretrained"].append(param)
        return groups

    # ---- forward -------------------------------------------------------------------------------
    def forward(self, x, timesteps, context, appearance, num_frames: int):
        num_frames = int(num_frames)
        validate_inputs(self.config, x, timesteps, context, appearance, num_frames,
                        min_frames=1 if self.single_frames else 2)
        dtype = self.activation_dtype
        out_dtype = x.dtype
        timesteps = per_frame_timesteps(timesteps, x.shape[0], num_frames, x.device)
        z_t, reference = x, appearance   # before the cast: the eps conversions run in fp32
        context, share = video_context(context.to(dtype), x.shape[0], num_frames)
        x = x.to(dtype).contiguous(memory_format=torch.channels_last)
        appearance = appearance.to(dtype).contiguous(memory_format=torch.channels_last)
        emb = self.unet.embed_time(timesteps, dtype)
        if self.text_frame_embed is not None:
            emb = emb + self.text_frame_embed(context, num_frames, share, x.shape[0])
        if self.prior_share_embed is not None:
            emb = emb + self.prior_share_embed(z_t, reference, num_frames, dtype)
        check = self.interrupt_check
        if self.appearnet is None:
            eps = self.unet(torch.cat([x, appearance], dim=1), emb, context, num_frames, share, between_blocks=check)
        else:
            features = self.appearnet(appearance, timesteps, context, num_frames, share, between_blocks=check)
            eps = self.unet(x, emb, context, num_frames, share, self.injection(features), between_blocks=check)
        if self.config.prediction == "v":
            eps = eps_from_v(eps, z_t, timesteps, self._schedule)
        elif self.config.prediction == "x0_residual":
            eps = eps_from_x0(reference.float() + eps.float(), z_t, timesteps, self._schedule)
        return eps.to(out_dtype).contiguous()

    @property
    def _schedule(self) -> DiscreteSchedule:
        cached = self.__dict__.get("_schedule_cache")
        if cached is None or cached[0] is not self.config:   # rebuilt when a trainer replaces the config
            cached = self.__dict__["_schedule_cache"] = (self.config, DiscreteSchedule.from_config(self.config))
        return cached[1]


def frame_abar(timesteps: torch.Tensor, schedule: DiscreteSchedule, device) -> torch.Tensor:
    """``abar_t`` per frame as ``[frames, 1, 1, 1]`` fp32 (fractional timesteps interpolate log-sigma)."""
    sigma = schedule.sigma(timesteps.detach().float().cpu()).to(device)
    return (1.0 / (1.0 + sigma ** 2)).view(-1, 1, 1, 1)


def eps_from_v(v: torch.Tensor, z_t: torch.Tensor, timesteps: torch.Tensor, schedule: DiscreteSchedule) -> torch.Tensor:
    """``eps = sqrt(1-abar) z_t + sqrt(abar) v`` per frame, in fp32."""
    abar = frame_abar(timesteps, schedule, v.device)
    return (1.0 - abar).sqrt() * z_t.float() + abar.sqrt() * v.float()


def eps_from_x0(x0: torch.Tensor, z_t: torch.Tensor, timesteps: torch.Tensor, schedule: DiscreteSchedule) -> torch.Tensor:
    """``eps = (z_t - sqrt(abar) z_0) / sqrt(1-abar)`` per frame (eq. 4 solved for eps), in fp32."""
    abar = frame_abar(timesteps, schedule, x0.device)
    return (z_t.float() - abar.sqrt() * x0.float()) / (1.0 - abar).sqrt()


def is_new_layer(name: str) -> bool:
    return any(marker in name for marker in NEW_LAYER_MARKERS) or name.startswith("injection.")


def per_frame_timesteps(timesteps, batch_frames: int, num_frames: int, device) -> torch.Tensor:
    t = torch.as_tensor(timesteps, device=device, dtype=torch.float32).reshape(-1)
    if t.numel() == 1:
        return t.expand(batch_frames)
    if t.numel() == batch_frames // num_frames:
        return t.repeat_interleave(num_frames)
    return t


def video_context(context: torch.Tensor, batch_frames: int, num_frames: int) -> Tuple[torch.Tensor, bool]:
    """Return ``(context, frames_share_context)``: one context per video when every frame has the same."""
    videos = batch_frames // num_frames
    if context.shape[0] == videos:
        return context, True
    per_video = context.view(videos, num_frames, *context.shape[1:])
    if bool((per_video == per_video[:, :1]).all()):
        return per_video[:, 0], True
    return context, False


def validate_inputs(config, x, timesteps, context, appearance, num_frames, min_frames: int = 2) -> None:
    """Raise :class:`MicroCinemaInputError` naming the bad input and the fix."""
    if x.ndim != 4:
        raise MicroCinemaInputError(
            f"latent must be [frames, channels, height, width] (frames in the batch), got shape {tuple(x.shape)}"
        )
    if x.shape[1] != config.in_channels:
        raise MicroCinemaInputError(
            f"latent has {x.shape[1]} channels, the model needs {config.in_channels} (an SD2.1-VAE latent); "
            "encode the keyframe with the SD2.1 VAE, not an SDXL/SD3/Flux VAE"
        )
    if num_frames < min_frames:
        raise MicroCinemaInputError(f"num_frames must be at least {min_frames}, got {num_frames}")
    if config.temporal_attention and num_frames > config.temporal_max_frames:
        raise MicroCinemaInputError(
            f"the video has {num_frames} frames; this model's temporal attention takes at most "
            f"{config.temporal_max_frames} (its frame-position table): make the video shorter (frames <= "
            f"{config.temporal_max_frames}; the base model is trained on 9, TSR on 5)")
    if x.shape[0] % num_frames:
        raise MicroCinemaInputError(
            f"latent batch {x.shape[0]} is not a whole number of {num_frames}-frame videos; "
            "the frame count must match the one the empty video latent was made with"
        )
    factor = 2 ** (len(config.channel_mult) - 1)
    if x.shape[-1] % factor or x.shape[-2] % factor:
        raise MicroCinemaInputError(
            f"latent size {x.shape[-2]}x{x.shape[-1]} must be a multiple of {factor} "
            f"(image width and height a multiple of {factor * 8} pixels, e.g. 320 or 512)"
        )
    if appearance is None or appearance.shape != x.shape:
        raise MicroCinemaInputError(
            f"appearance latent shape {None if appearance is None else tuple(appearance.shape)} must equal the "
            f"video latent's {tuple(x.shape)}; build it with appearance_sequence() from the keyframe latent"
        )
    if context.ndim != 3 or context.shape[-1] != config.context_dim:
        raise MicroCinemaInputError(
            f"text conditioning shape {tuple(context.shape)} must be [batch, tokens, {config.context_dim}] "
            f"(SD2.1's OpenCLIP-H text encoder)"
        )
    if context.shape[0] not in (x.shape[0], x.shape[0] // num_frames):
        raise MicroCinemaInputError(
            f"text conditioning batch {context.shape[0]} must be one per video ({x.shape[0] // num_frames}) "
            f"or one per frame ({x.shape[0]})"
        )
    for name, tensor in (("latent", x), ("appearance latent", appearance), ("text conditioning", context)):
        if tensor.is_meta:  # shape-only runs (FLOP counting) have no values to check
            continue
        seen = nonfinite_summary(tensor)
        if seen is not None:
            raise MicroCinemaInputError(f"the {name} reaching the model has {seen}. {NONFINITE_CAUSES[name]}")


# What can put NaN/inf into each model input, most likely first (the message lists them; it does not guess).
NONFINITE_CAUSES = {
    "latent": "Possible causes: the sampling diverged (fp16 model weights overflow: load the model as bf16 or "
              "fp32), or the node feeding the video latent (its 'latent_image' / 'latent') produced them.",
    "appearance latent": "It is the keyframe's VAE latent. Possible causes: the keyframe IMAGE itself has "
                         "NaN/inf pixels (check the node feeding 'keyframe'), or the VAE overflowed in fp16 "
                         "(start ComfyUI with --fp32-vae or --bf16-vae).",
    "text conditioning": "Possible causes: the text encoder file does not match its loader (ComfyUI then leaves "
                         "weights unset with only a warning in the console: check it), or the text encoder "
                         "overflowed in fp16; re-encode the prompt with a matching text encoder.",
}


def nonfinite_summary(tensor: torch.Tensor) -> Optional[str]:
    """What is non-finite in ``tensor`` (``"NaN in 12 and +inf in 3 of 2304 values"``), or None when all is finite."""
    if bool(torch.isfinite(tensor).all()):
        return None
    counts = ((int(torch.isnan(tensor).sum()), "NaN"), (int(torch.isposinf(tensor).sum()), "+inf"),
              (int(torch.isneginf(tensor).sum()), "-inf"))
    total = tensor.numel()
    parts = [f"{label} in {'every one' if n == total else n}" for n, label in counts if n]
    return f"{' and '.join(parts)} of its {total} values"
