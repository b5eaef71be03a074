"""Training settings: one JSON (or YAML) file with a ``data`` and a ``train`` section, plus overrides.

Defaults are the paper's base model (appendix tab. 3, sec. 4): 9 frames at 2 fps, 320x320, lambda 0.03,
text drop 0.1, LR 2e-5 for temporal/injection layers and 10x smaller for spatial ones, batch 4 per GPU.
``configs/train_base.json`` and ``configs/train_tsr.json`` spell them out.
Overrides are ``section.field=value`` (or ``field=value`` when the name is unique); values are JSON.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


@dataclass
class DataConfig:
    """How clips are cut from videos and filtered (used by ``encode_cache``; recorded in the manifest)."""

    kind: str = "base"                  # "base": centre frame is the condition; "tsr": first and last
    num_frames: int = 9                 # N (tab. 3: 9 base, 5 TSR)
    fps: list = field(default_factory=lambda: [2.0])  # target clip frame rates (tab. 3: 2 base; 8, 30 TSR)
    resolution: int = 320               # square side in pixels (latent side = resolution / 8)
    clips_per_video: int = 1            # clips cut per video, evenly spread over its length
    min_source_fps_ratio: float = 0.8   # skip a video whose fps < ratio * target fps (too many repeats)
    # motion filter (filters.py): mean |I_{k+1} - I_k| of grey frames in [0, 1], 64x64
    motion_measure: str = "absdiff"     # "absdiff" or "farneback" (needs opencv)
    min_motion: Optional[float] = 0.004  # below: near-static clip, dropped (None: no lower bound)
    max_motion: Optional[float] = 0.25  # mean above: too jumpy, dropped (None: no upper bound)
    max_jump: Optional[float] = 0.35    # any single step above: scene cut, dropped (None: off)
    # caption-image score filter (optional hook "module:function", called on the condition frame)
    caption_score_fn: Optional[str] = None
    min_caption_score: Optional[float] = None
    shard_size: int = 256               # clips per safetensors shard

    def __post_init__(self):
        if isinstance(self.fps, (int, float)):
            self.fps = [float(self.fps)]
        self.fps = [float(f) for f in self.fps]
        if self.kind not in ("base", "tsr"):
            raise ValueError(f"data.kind must be 'base' or 'tsr', got {self.kind!r}")
        if self.num_frames < 2:
            raise ValueError("data.num_frames must be at least 2")
        if self.resolution % 8:
            raise ValueError("data.resolution must be a multiple of 8 (the VAE downsamples by 8)")


@dataclass
class TrainConfig:
    """Optimisation, objective, scale-out, checkpoints and logging."""

    # model
    kind: str = "base"
    preset: str = "full"                # "full" (tab. 3) or "tiny" (tests, CPU experiments)
    model_overrides: dict = field(default_factory=dict)  # MicroCinemaConfig fields to change
    init: Optional[str] = None          # SD2.1 single-file checkpoint (inflated) or a MicroCinema file
    new_layer_init: str = "zero"        # from scratch only: "small" starts zero-init layers at 0.1x default init
    # data
    cache_dir: str = "cache"
    batch_size: int = 4                 # per process (tab. 3: 4 per GPU, 4 GPUs)
    seed: int = 0
    # objective (sec. 3.3, eq. 3-5)
    noise_prior_lambda: float = 0.03
    text_drop_rate: float = 0.1         # tab. 3: 0.1 base, 1.0 TSR
    offset_noise: float = 0.0           # + this x one Gaussian per frame and channel (not in the paper; see objective)
    high_noise_fraction: float = 0.0    # this fraction of clips draws t from [high_noise_from, 999] (not in the paper)
    high_noise_from: int = 850
    x0_min_snr: Optional[float] = 5.0   # x0_residual models: weight min(SNR_t, this) on the z_0 error (min-SNR); None:
                                        # the plain z_0 error at every t, so the prediction from pure noise (what
                                        # a one-step sampler returns) learns as much as the last steps (objective.py)
    reverse_rate: float = 0.0           # base clips played backwards with the reversed caption (not in the paper;
                                        # needs the cache's reversed_text, training/time_reversal.py)
    static_when_dropped: bool = False   # a text-dropped base clip becomes its keyframe held still (not in the
                                        # paper): the empty prompt means "no motion" (training/objective.py)
    motion_repeats: dict = field(default_factory=dict)  # {"static": 4}: clips of that motion (cache manifest)
                                        # appear this many times per epoch (not in the paper)
    # the noise prior as the motion knob (not in the paper): a clip whose motion is scaled by a hidden factor r
    # (the cache record's "amplitude", toyworld.world) is noised with lambda + prior_amplitude_gamma -
    # prior_amplitude_coupling * log2(r), so sampling at gamma = prior_amplitude_gamma gives amplitude 1 and each
    # prior_amplitude_coupling more gamma halves it (training/objective.py); 0: one lambda for every clip (eq. 3)
    prior_amplitude_coupling: float = 0.0
    prior_amplitude_gamma: float = 0.02
    # customisation mode (issue 36, docs/customisation.md; off while customisation_cache_dir is None): each step
    # trains either a customisation batch (single frames: AppearNet takes the subject reference, the target is
    # its picture elsewhere, with caption) or an image-to-video batch of cache_dir's clips (the unannotated videos)
    customisation_cache_dir: Optional[str] = None  # a pair cache (training/customisation_cache.py)
    customisation_probability: float = 0.5  # share of customisation steps (the stochastic switch)
    objective_switch: str = "stochastic"  # "stochastic": a seeded draw per step; "sequential": customisation for
                                        # the first customisation_probability of max_steps, then image-to-video
    token_drop_rate: float = 0.5        # image-to-video steps: share of the keyframe's tokens dropped
    token_size: int = 2                 # a token: a token_size x token_size block of latent positions
    token_fill: str = "random"          # a dropped token: "random" (randomised initialisation) or "mean"
    image_to_video_captions: bool = False  # False: clips train with the empty prompt (unannotated videos)
    # optimiser (sec. 4)
    lr: float = 2e-5                    # new layers: temporal (both branches), SPADE, injection (optim.py)
    spatial_lr_scale: float = 0.1       # SD2.1-initialised spatial layers, AppearNet's too: 10x smaller
    embedding_lr_scale: float = 1.0     # the prior-share embedding's layers at lr x this (not in the paper; optim.py)
    trainable: tuple = ()               # module-name prefixes that learn, the rest frozen (e.g. ("prior_share_embed.",));
                                        # empty: every layer (not in the paper: a gamma pilot that cannot forget)
    weight_decay: float = 0.01
    adam_betas: tuple = (0.9, 0.999)
    adam_eps: float = 1e-8
    warmup_steps: int = 1000
    lr_schedule: str = "constant"       # after warm-up: "constant" or "cosine"
    grad_clip: Optional[float] = 1.0
    ema_decay: Optional[float] = None   # e.g. 0.9999; None: no EMA
    max_steps: int = 800_000            # tab. 3: 800K base, 40K TSR
    max_minutes: Optional[float] = None  # wall-clock budget of this process: stop, checkpoint, export
    # precision / memory
    precision: str = "auto"             # "bf16" autocast, "fp32", or "auto": bf16 where the device runs it fast
    gradient_checkpointing: bool = False
    parallel: str = "ddp"               # "ddp" (also for one process) or "fsdp"
    # checkpoints and logs
    output_dir: str = "runs/base"
    save_every: int = 2000
    keep_last: int = 3
    log_every: int = 10
    resume: Optional[str] = "auto"      # "auto": latest in output_dir; a path; None: start fresh
    export_name: str = "microcinema_base.safetensors"
    export_ema: bool = True             # export EMA weights when EMA is on
    sample_every: int = 0               # write a sample video latent every N steps (0: off)
    sample_steps: int = 20              # Euler steps of those samples
    sample_cfg: float = 7.5             # guidance of those samples (tab. 3: 7.5 base, 1.0 TSR)
    sample_gamma: float = 0.02          # inference prior shift of those samples (tab. 3)
    progress_bar: bool = True
    tensorboard: bool = True            # only if torch.utils.tensorboard imports

    def __post_init__(self):
        self.adam_betas = tuple(self.adam_betas)
        self.trainable = tuple(self.trainable)
        for name, allowed in (("kind", ("base", "tsr")), ("preset", ("full", "tiny")),
                              ("precision", ("auto", "bf16", "fp32")), ("parallel", ("ddp", "fsdp")),
                              ("lr_schedule", ("constant", "cosine")),
                              ("new_layer_init", ("zero", "small")),
                              ("objective_switch", ("stochastic", "sequential")),
                              ("token_fill", ("random", "mean"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"train.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("text_drop_rate", "reverse_rate", "customisation_probability", "token_drop_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"train.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.static_when_dropped and self.kind != "base":
            raise ValueError(f"train.static_when_dropped is for kind 'base' (this run is {self.kind!r}: TSR drops all "
                             "text and keeps its clips); set it to false")
        if self.customisation_cache_dir and self.kind != "base":
            raise ValueError(f"train.customisation_cache_dir is for kind 'base' (this run is {self.kind!r})")
        if self.x0_min_snr is not None and self.x0_min_snr <= 0:
            raise ValueError(f"train.x0_min_snr must be > 0 or null (the plain z_0 error), got {self.x0_min_snr!r}")
        if self.token_size < 1:
            raise ValueError(f"train.token_size must be >= 1 (latent positions per token side), got {self.token_size!r}")
        if self.prior_amplitude_coupling < 0:
            raise ValueError(f"train.prior_amplitude_coupling must be >= 0 (gamma per halving of the motion), got "
                             f"{self.prior_amplitude_coupling!r}")
        for motion, count in self.motion_repeats.items():
            if not isinstance(count, int) or count < 1:
                raise ValueError(f"train.motion_repeats[{motion!r}] must be a whole number >= 1, got {count!r}")


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return {"data": dataclasses.asdict(self.data), "train": dataclasses.asdict(self.train)}


def _read_file(path: str | Path) -> dict:
    path = Path(path)
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml  # only for YAML configs

        return yaml.safe_load(text) or {}
    return json.loads(text)


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw  # a bare string such as a path


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``section.field=value`` / ``field=value`` overrides to a raw config dict."""
    sections = {"data": {f.name for f in dataclasses.fields(DataConfig)},
                "train": {f.name for f in dataclasses.fields(TrainConfig)}}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        if "." in key:
            section, name = key.split(".", 1)
        else:
            owners = [s for s, names in sections.items() if key in names]
            if len(owners) != 1:
                raise ValueError(f"override key {key!r} is {'ambiguous' if owners else 'unknown'}; "
                                 "write section.field (data.* or train.*)")
            section, name = owners[0], key
        if section not in sections or name not in sections[section]:
            raise ValueError(f"unknown config field {section}.{name}")
        raw.setdefault(section, {})[name] = _parse_value(value)
    return raw


def load_run_config(path: Optional[str] = None, overrides: Optional[list[str]] = None) -> RunConfig:
    raw = _read_file(path) if path else {}
    unknown = set(raw) - {"data", "train", "comment"}
    if unknown:
        raise ValueError(f"config file has unknown sections {sorted(unknown)} (expected data, train)")
    raw = apply_overrides({k: dict(v) for k, v in raw.items() if k in ("data", "train")}, overrides or [])
    return RunConfig(data=DataConfig(**raw.get("data", {})), train=TrainConfig(**raw.get("train", {})))
