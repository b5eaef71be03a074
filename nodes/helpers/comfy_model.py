"""MicroCinema as a real ComfyUI model: the stock KSampler, SamplerCustom, previews and memory management
work on it.

Three small pieces, the pattern ComfyUI's own Stable Video Diffusion uses:

* ``MicroCinemaModelConfig``: a ``supported_models_base.BASE`` subclass (SD2.1 latent format with its
  0.18215 VAE scale, eps prediction, SD2.1's linear beta schedule over 1000 steps).
* ``MicroCinemaComfyModel``: a ``model_base.BaseModel`` subclass whose ``extra_conds`` turns the keyframe
  latent carried in the conditioning (key ``KEYFRAME_KEY``, put there by the Keyframe Conditioning / TSR
  nodes) into the per-frame appearance input of AppearNet, sized to the noise batch, plus the frame count.
  With CFG ComfyUI stacks cond and uncond rows, so every row of the batch has its appearance row.
* ``DiffusionModelAdapter``: the ``diffusion_model`` ComfyUI calls as
  ``forward(x, timesteps, context=None, control=None, transformer_options={}, **extra_conds)``; it calls
  :class:`microcinema_core.models.microcinema.MicroCinemaModel`.

``wrap_model`` puts it all in a ``ModelPatcher`` (keyword arguments: the positional order changed between
ComfyUI versions) and routes the model's attention through ComfyUI's ``optimized_attention`` so the user's
attention flags apply.

Memory management: the network's layers are ComfyUI's own ``comfy.ops`` classes (``comfy_operations``), as
ComfyUI builds its own U-Net: ``disable_weight_init`` when the weights are stored in the compute dtype,
``manual_cast`` (or what ``comfy.ops.pick_operations`` picks on hosts that have it) when they are not (fp8
storage). ComfyUI can then cast weights layer by layer and load the network partially (low VRAM): the
``ModelPatcher`` flips ``comfy_cast_weights`` on the layers that stay on the offload device.
"""
from __future__ import annotations

import logging

import torch

import comfy.conds
import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.supported_models_base

from ...microcinema_core.config import MicroCinemaConfig
from ...microcinema_core.diffusion.appearance_input import appearance_sequence
from ...microcinema_core.diffusion.schedule import DiscreteSchedule
from ...microcinema_core.errors import MicroCinemaInputError
from ...microcinema_core.models.cost import cost_warning, slow_dtype_reason
from ...microcinema_core.nn.attention import set_attention_backend

# Keys this pack adds to ComfyUI conditioning dicts (they reach ``extra_conds`` as keyword arguments).
KEYFRAME_KEY = "microcinema_keyframe"  # raw VAE latent: [B,4,h,w] (base) or [B,2,4,h,w] (TSR first/last)
APPEARANCE_KEY = "microcinema_appearance"  # the model input built from it, [rows,4,h,w]
# what the latent of KEYFRAME_KEY is: "keyframe" (Keyframe Conditioning, TSR) or "subject" (Subject Conditioning, a
# subject reference); absent = "keyframe". Checked against the model's config.appearance_input when sampling.
APPEARANCE_SOURCE_KEY = "microcinema_appearance_source"


class MicroCinemaModelConfig(comfy.supported_models_base.BASE):
    """ComfyUI's description of a MicroCinema model: SD2.1 latents, eps prediction, SD2.1 schedule.

    ``manual_cast_dtype`` (set with ``set_inference_dtype``) is the compute dtype when the weights are stored
    in another one (fp8): ComfyUI then hands the network its inputs in that dtype.
    """

    unet_config = {"disable_unet_model_creation": True}  # the net is ours, built before wrapping
    unet_extra_config = {}
    latent_format = comfy.latent_formats.SD15  # SD1.x/2.x VAE, scale factor 0.18215
    supported_inference_dtypes = [torch.float16, torch.bfloat16, torch.float32]

    def __init__(self, mc_config: MicroCinemaConfig):
        self.sampling_settings = {"beta_schedule": "linear", "linear_start": mc_config.beta_start,
                                  "linear_end": mc_config.beta_end, "timesteps": mc_config.num_train_timesteps}
        super().__init__(dict(self.unet_config))
        self.mc_config = mc_config


class DiffusionModelAdapter(torch.nn.Module):
    """ComfyUI's calling convention -> ``MicroCinemaModel.forward``.

    The first call for a new latent shape estimates the step's cost (``microcinema_core/models/cost.py``)
    and logs a warning when it is far above what this machine runs in reasonable time.
    """

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net
        self._costed = set()  # (shape, dtype, device) already estimated

    def warn_if_too_slow(self, rows: int, height: int, width: int, num_frames: int, dtype, device,
                         steps=None) -> str | None:
        """Log (once per shape) the cost warning of ``cost_warning``; returns it (None: no warning)."""
        key = (rows, height, width, num_frames, str(dtype), str(device))
        if key in self._costed:
            return None
        self._costed.add(key)
        try:
            message = cost_warning(self.net, rows, height, width, num_frames, dtype, device, steps=steps)
        except Exception as exc:  # an estimate must never break sampling
            logging.debug("MicroCinema: no cost estimate (%s)", exc)
            return None
        if message:
            logging.warning("MicroCinema: %s", message)
        return message

    @property
    def dtype(self) -> torch.dtype:
        """The weights' storage dtype (fp8 when stored so), what ComfyUI's ``get_dtype`` reports."""
        return self.net.weight_dtype

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the network computes in."""
        return self.net.activation_dtype

    def forward(self, x, timesteps, context=None, control=None, transformer_options={}, **extra):
        appearance = extra.get(APPEARANCE_KEY)
        if appearance is None:
            raise MicroCinemaInputError(
                "the MicroCinema model got no keyframe: route BOTH positive and negative through "
                "'MicroCinema Keyframe Conditioning' ('MicroCinema Subject Conditioning' for a subject-driven model; "
                "use 'MicroCinema TSR Interpolate' for TSR models)")
        if context is None:
            raise MicroCinemaInputError("the MicroCinema model got no text conditioning (CLIP Text Encode)")
        num_frames = int(extra.get("num_video_frames") or x.shape[0])
        sigmas = (transformer_options or {}).get("sample_sigmas")  # current hosts: the whole schedule
        self.warn_if_too_slow(int(x.shape[0]), int(x.shape[-2]), int(x.shape[-1]), num_frames, self.compute_dtype, x.device,
                              steps=len(sigmas) - 1 if sigmas is not None else None)
        return self.net(x, timesteps, context, appearance.to(x.dtype), num_frames)


class MicroCinemaComfyModel(comfy.model_base.BaseModel):
    """A MicroCinema network as ComfyUI's ``BaseModel`` (eps prediction)."""

    def __init__(self, model_config: MicroCinemaModelConfig, net: torch.nn.Module, device=None):
        super().__init__(model_config, model_type=comfy.model_base.ModelType.EPS, device=device)
        self.diffusion_model = DiffusionModelAdapter(net)
        if model_config.mc_config.zero_terminal_snr:
            # ComfyUI builds SD's sigmas from sampling_settings; a zero-terminal-SNR model (not in the paper,
            # microcinema_core/diffusion/schedule.py) gets the table it was trained on (set_sigmas: both hosts)
            self.model_sampling.set_sigmas(DiscreteSchedule.from_config(model_config.mc_config).sigmas)

    @property
    def mc_config(self) -> MicroCinemaConfig:
        return self.model_config.mc_config

    def get_dtype(self):
        return self.diffusion_model.dtype

    def extra_conds(self, **kwargs):
        out = super().extra_conds(**kwargs)
        keyframe = kwargs.get(KEYFRAME_KEY)
        noise = kwargs["noise"]
        if keyframe is not None:
            check_appearance_source(self.mc_config, kwargs.get(APPEARANCE_SOURCE_KEY, "keyframe"))
            reference = self.process_latent_in(keyframe.to(device=noise.device, dtype=torch.float32))
            appearance, frames = appearance_for_batch(self.mc_config.kind, reference, noise.shape)
            out[APPEARANCE_KEY] = comfy.conds.CONDNoiseShape(appearance)
            out["num_video_frames"] = comfy.conds.CONDConstant(frames)
        return out


def check_appearance_source(config: MicroCinemaConfig, source: str) -> None:
    """Refuse a keyframe given to a subject-driven model, or a subject reference to an image-to-video model: each
    model was trained on one kind of picture in AppearNet (docs/customisation.md)."""
    wanted = getattr(config, "appearance_input", "keyframe")
    if config.kind != "base" or source == wanted:
        return
    if source == "subject":
        raise MicroCinemaInputError(
            "the conditioning comes from 'MicroCinema Subject Conditioning', but the model is an image-to-video "
            "model (it animates a keyframe; its config says appearance_input 'keyframe'): load a subject-driven "
            "(customisation) model, e.g. microcinema_toy_custom.safetensors, in 'Load MicroCinema Model'. To animate "
            "the prepared reference as a keyframe instead, connect Subject Conditioning's 'reference' output to "
            "'MicroCinema Keyframe Conditioning'.")
    raise MicroCinemaInputError(
        f"the model is a subject-driven (customisation) model (appearance_input {wanted!r}): it takes a subject "
        "reference, not a keyframe. Connect positive and negative from 'MicroCinema Subject Conditioning' instead "
        "of 'MicroCinema Keyframe Conditioning', or load an image-to-video model (e.g. "
        "microcinema_toy_base.safetensors) to animate a keyframe.")


def appearance_for_batch(kind: str, reference: torch.Tensor, noise_shape) -> tuple[torch.Tensor, int]:
    """The appearance sequence for a latent batch of ``noise_shape`` (all videos' frames in the batch).

    ``reference`` holds one keyframe (base) or one first/last pair (TSR) per video; the frame count is
    the batch size over the number of videos. Raises ``MicroCinemaInputError`` when they do not fit.
    """
    videos = int(reference.shape[0])
    rows, spatial = int(noise_shape[0]), tuple(noise_shape[-2:])
    if tuple(reference.shape[-2:]) != spatial:
        raise MicroCinemaInputError(
            f"the keyframe latent is {reference.shape[-1] * 8}x{reference.shape[-2] * 8} px but the video latent "
            f"is {spatial[1] * 8}x{spatial[0] * 8} px: use the empty video latent of the same Keyframe "
            "Conditioning node (or the same width/height)")
    if rows % videos:
        raise MicroCinemaInputError(
            f"the video latent has {rows} frames, not a whole number of videos for {videos} keyframe(s)")
    frames = rows // videos
    if frames < 2:
        raise MicroCinemaInputError(f"a video needs at least 2 frames, the latent has {frames} per keyframe")
    return appearance_sequence(kind, reference, frames), frames


def use_comfy_attention() -> None:
    """Route MicroCinema's attention through ComfyUI's ``optimized_attention`` (the user's flags apply)."""
    from comfy.ldm.modules.attention import optimized_attention

    def comfy_attention(q, k, v, heads):
        return optimized_attention(q, k, v, heads)

    set_attention_backend(comfy_attention)


def comfy_operations(weight_dtype: torch.dtype, compute_dtype: torch.dtype | None, load_device=None):
    """ComfyUI's layer namespace for weights stored in ``weight_dtype`` and computed in ``compute_dtype``.

    What ComfyUI's own model loading picks: ``comfy.ops.pick_operations`` where the host has it (current
    hosts; it may choose fp8 matmuls with ``--fast``), else (2024 host) ``manual_cast`` when the two dtypes
    differ and ``disable_weight_init`` when they do not. Called with keywords, and any namespace that lacks
    a layer the network builds falls back to those two.
    """
    import comfy.ops

    from ...microcinema_core.nn.ops import resolve_operations

    cast = compute_dtype is not None and compute_dtype != weight_dtype
    fallback = comfy.ops.manual_cast if cast else comfy.ops.disable_weight_init
    pick = getattr(comfy.ops, "pick_operations", None)
    if pick is None:
        return fallback
    for kwargs in ({"load_device": load_device}, {}):  # older pick_operations had no load_device
        try:
            return resolve_operations(pick(weight_dtype, compute_dtype if cast else None, **kwargs))
        except TypeError:
            continue
    return fallback


def wrap_model(net: torch.nn.Module) -> comfy.model_patcher.ModelPatcher:
    """A ComfyUI MODEL (``ModelPatcher``) around a ``MicroCinemaModel``.

    Every MODEL of the pack passes here (the loaders, Inflate): its layers become ComfyUI's ``comfy.ops``
    (``comfy_operations``; a network built from other layers is rebuilt around the same tensors, no copy),
    so ComfyUI can cast weights and load it partially; weights stored in another dtype than the compute
    dtype (``net.compute_dtype``: fp8 storage) are computed in it (ComfyUI's ``manual_cast_dtype``). It
    wires ComfyUI's Cancel into the network (checked before every block, so one huge step stops within a
    block) and warns when the compute dtype is slow on the device (bf16 on a CPU without native bf16).
    """
    use_comfy_attention()
    load_device = comfy.model_management.get_torch_device()
    storage, compute = net.weight_dtype, net.activation_dtype
    operations = comfy_operations(storage, compute, load_device)
    if net.operations is not operations:
        net = net.with_operations(operations)
    net.compute_dtype = compute if compute != storage else None
    net.interrupt_check = comfy.model_management.throw_exception_if_processing_interrupted
    warn_if_slow_dtype(compute, load_device)
    config = MicroCinemaModelConfig(net.config)
    config.set_inference_dtype(storage, net.compute_dtype)
    model = MicroCinemaComfyModel(config, net.eval())
    return comfy.model_patcher.ModelPatcher(
        model, load_device=load_device, offload_device=comfy.model_management.unet_offload_device())


def warn_if_slow_dtype(dtype, device) -> str | None:
    """Log a warning naming the cause when ``dtype`` is far slower than fp32 on ``device``; returns it."""
    reason = slow_dtype_reason(dtype, device)
    if reason:
        logging.warning("MicroCinema: the model's weights are %s on %s, but %s",
                        str(dtype).replace("torch.", ""), device, reason)
        return f"the model's weights are {str(dtype).replace('torch.', '')} on {device}, but {reason}"
    return None


def microcinema_config_of(model, input_name: str = "model") -> MicroCinemaConfig:
    """The MicroCinema config of a MODEL, or a clear error when it is another kind of model."""
    inner = getattr(model, "model", None)
    if not isinstance(inner, MicroCinemaComfyModel):
        kind = type(inner).__name__ if inner is not None else type(model).__name__
        raise MicroCinemaInputError(
            f"'{input_name}' is not a MicroCinema model (got a {kind}): load one with 'Load MicroCinema "
            "Model' / 'Load MicroCinema TSR Model', or make one with 'Inflate SD2.1 to MicroCinema'")
    return inner.mc_config


def require_kind(model, kind: str, input_name: str = "model") -> MicroCinemaConfig:
    """``microcinema_config_of`` and check that it is a ``base`` or ``tsr`` model."""
    config = microcinema_config_of(model, input_name)
    if config.kind != kind:
        wanted = "base image&text-to-video" if kind == "base" else "TSR (temporal interpolation)"
        raise MicroCinemaInputError(
            f"'{input_name}' is a MicroCinema {config.kind.upper()} model; this input needs a {wanted} model")
    return config


def model_object(model, name: str):
    """``model.get_model_object(name)`` on hosts that have it, else the object patch or the attribute."""
    getter = getattr(model, "get_model_object", None)
    if getter is not None:
        return getter(name)
    return model.object_patches.get(name, getattr(model.model, name))
