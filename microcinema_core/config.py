"""Every hyper-parameter of the MicroCinema image&text-to-video model (paper tab. 3 of the appendix).

The defaults are the full-size base model: SD2.1-base spatial layers (320 channels, multipliers
[1,2,4,4], attention at downsampling factors 1,2,4, 64-channel heads, 1024-d text), 9 frames at 2 fps,
320x320 pixels. ``MicroCinemaConfig.tsr()`` is the temporal-interpolation model, ``tiny()`` a test size.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from .errors import CheckpointError

KINDS = ("base", "tsr")
INJECTION_MODES = ("concat", "add_dec", "add_encdec", "add_encdec_spade")
PREDICTIONS = ("eps", "v", "x0_residual")
APPEARANCE_INPUTS = ("keyframe", "subject")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class MicroCinemaConfig:
    kind: str = "base"
    injection: str = "add_encdec_spade"
    # spatial layers: SD2.1-base
    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_levels: tuple = (0, 1, 2)  # levels with a transformer (downsampling factors 1, 2, 4)
    num_head_channels: int = 64
    context_dim: int = 1024
    context_length: int = 77
    norm_groups: int = 32
    # temporal layers (sec. 3.1)
    temporal_conv_kernel: int = 3
    temporal_attention: bool = True
    temporal_max_frames: int = 64  # sinusoidal table length; any count up to this works
    # video
    num_frames: int = 9
    fps: float = 2.0
    resolution: int = 320
    # appearance noise prior (sec. 3.3), lambda of eq. 3 used in training
    noise_prior_lambda: float = 0.03
    # diffusion (tab. 3): eps-prediction, 1000 steps, linear betas. prediction "v": the network's head
    # predicts v = sqrt(abar) eps - sqrt(1-abar) z_0 (SD2.1-768's parameterisation) and forward() converts it
    # to eps, so samplers and hosts still see an eps model (models/microcinema.py). "x0_residual" (not in the
    # paper; the toy TSR): the head predicts z_0 minus AppearNet's input, so an untrained network already gives
    # the first/last interpolation and training learns only the correction
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    prediction: str = "eps"
    # not in the paper: the schedule rescaled to zero terminal SNR (Lin et al. 2024, diffusion/schedule.py), so
    # z_999 holds no trace of the clip and the text alone sets the motion at the first sampling step
    zero_terminal_snr: bool = False
    # toy-scale addition, not in the paper: the prompt's mean token vector and each frame's offset from the
    # centre added to the timestep embedding (models/text_frame_embedding.py)
    text_frame_embedding: bool = False
    # toy-scale addition, not in the paper: the share of the appearance latent in the input (what the noise prior's
    # lambda + gamma sets at t = 999) added to the timestep embedding (models/prior_share_embedding.py)
    prior_share_embedding: bool = False
    # what AppearNet is given: "keyframe" (the paper: the video's centre frame), or "subject" (issue 36's
    # customisation mode, docs/customisation.md): a reference photo of the subject, which the video shows
    # elsewhere, at another size, doing what the text says. The network is the same; the checkpoint says which
    appearance_input: str = "keyframe"

    def __post_init__(self):
        object.__setattr__(self, "channel_mult", tuple(self.channel_mult))
        object.__setattr__(self, "attention_levels", tuple(self.attention_levels))
        if self.kind not in KINDS:
            raise ValueError(f"config kind must be one of {KINDS}, got {self.kind!r}")
        if self.injection not in INJECTION_MODES:
            raise ValueError(f"config injection must be one of {INJECTION_MODES}, got {self.injection!r}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"config prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if self.appearance_input not in APPEARANCE_INPUTS:
            raise ValueError(f"config appearance_input must be one of {APPEARANCE_INPUTS}, got {self.appearance_input!r}")
        if self.appearance_input == "subject" and self.kind != "base":
            raise ValueError("config appearance_input 'subject' is for the base model (TSR takes first and last frames)")
        for c in self.channel_mult:
            if (self.model_channels * c) % self.norm_groups:
                raise ValueError("model_channels * every channel_mult must divide by norm_groups")

    # ---- presets -------------------------------------------------------------------------------
    @classmethod
    def base(cls, **overrides) -> "MicroCinemaConfig":
        """Base image&text-to-video model: 9 frames at 2 fps, centre frame repeated (tab. 3, left)."""
        return cls(**overrides)

    @classmethod
    def tsr(cls, **overrides) -> "MicroCinemaConfig":
        """Temporal interpolation (x4 fps): 5 frames, first and last frame given (tab. 3, right)."""
        values = dict(kind="tsr", num_frames=5, fps=8.0)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def tiny(cls, kind: str = "base", **overrides) -> "MicroCinemaConfig":
        """A few-MB model of the same structure, for tests and CPU experiments."""
        values = dict(
            kind=kind, model_channels=32, num_head_channels=8, context_dim=64, norm_groups=32,
            num_frames=9 if kind == "base" else 5, fps=2.0 if kind == "base" else 8.0, resolution=64,
        )
        values.update(overrides)
        return cls(**values)

    # ---- derived -------------------------------------------------------------------------------
    @property
    def latent_size(self) -> int:
        return self.resolution // 8

    @property
    def is_tiny(self) -> bool:
        return self.model_channels < 320

    def replace(self, **changes) -> "MicroCinemaConfig":
        return dataclasses.replace(self, **changes)

    # ---- safetensors metadata (string -> string) ------------------------------------------------
    def to_metadata(self) -> dict:
        return {
            "microcinema.format_version": str(FORMAT_VERSION),
            "microcinema.kind": self.kind,
            "microcinema.injection": self.injection,
            "microcinema.noise_prior_lambda": repr(self.noise_prior_lambda),
            "microcinema.num_frames": str(self.num_frames),
            "microcinema.fps": repr(self.fps),
            "microcinema.resolution": str(self.resolution),
            "microcinema.config": json.dumps(dataclasses.asdict(self), sort_keys=True),
        }

    @classmethod
    def from_metadata(cls, metadata: dict | None) -> "MicroCinemaConfig":
        if not metadata or "microcinema.config" not in metadata:
            raise CheckpointError(
                "the file has no MicroCinema metadata (key 'microcinema.config'): it is not a MicroCinema "
                "checkpoint. Load SD2.1 files with 'Inflate SD2.1 to MicroCinema', MicroCinema files with "
                "'Load MicroCinema Model'."
            )
        version = int(metadata.get("microcinema.format_version", "0"))
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint format version {version} is newer than this pack understands ({FORMAT_VERSION}): "
                "update ComfyUI-MicroCinema."
            )
        raw = json.loads(metadata["microcinema.config"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise CheckpointError(f"checkpoint config has fields this pack does not know: {unknown}; update the pack")
        return cls(**raw)


