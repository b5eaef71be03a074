"""The customisation mode's two objectives and the switch between them (issue 36; first abstract of
``../shared/paper/004_a0e28a498e8cbe82.txt``: "stochastic switching during joint optimization of subject-specific
and temporal features, mitigating catastrophic forgetting").

Each step trains ONE objective for the whole global batch (every process the same):

* **customisation** (probability ``train.customisation_probability``): single-frame pairs from the pair cache
  (``customisation_objective.py``);
* **image-to-video**: clips of ``train.cache_dir`` (the unannotated videos) through ``objective.prepare_batch``, with
  the empty prompt unless ``train.image_to_video_captions``, and image-token dropping with randomised
  initialisation (``image_tokens.py``).

``objective_switch="stochastic"`` draws the objective per step from ``(seed, step)`` alone (the same on every
process, and after a resume); ``"sequential"`` (the comparison without the switch) trains customisation for the
first ``customisation_probability`` of ``max_steps``, then image-to-video. Both streams are read at position
``samples_seen``: a step of one objective skips a batch of the other's endless shuffled stream, so there is no
extra state to checkpoint.
"""
from __future__ import annotations

from typing import Optional

import torch

from .customisation_cache import REFERENCE, TARGET, open_pair_cache
from .customisation_objective import prepare_customisation_batch
from .data_order import DataOrder, sample_seed
from .image_tokens import ImageTokenDropping
from .objective import PreparedBatch, prior_lambdas
from .train_config import TrainConfig

SWITCH_STREAM = 0x5317C4ED   # the switch's draws, apart from every sample's
PAIR_ORDER = 0xC0570000      # the pairs' shuffle, apart from the clips'


class ObjectiveSwitch:
    def __init__(self, probability: float, mode: str, seed: int, max_steps: int):
        if not 0.0 <= probability <= 1.0 or mode not in ("stochastic", "sequential"):
            raise ValueError(f"objective switch needs a probability in [0, 1] and mode 'stochastic' or 'sequential', "
                             f"got {probability!r}, {mode!r}")
        self.probability, self.mode, self.seed, self.max_steps = probability, mode, seed, max_steps

    def is_customisation(self, step: int) -> bool:
        if self.mode == "sequential":
            return step < round(self.probability * self.max_steps)
        return sample_seed(self.seed ^ SWITCH_STREAM, step, 0) / float(1 << 63) < self.probability


class CustomisationMode:
    """What the trainer asks of the customisation mode (``None`` from :func:`customisation_mode` when it is off)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.pairs = open_pair_cache(cfg.customisation_cache_dir)
        self.switch = ObjectiveSwitch(cfg.customisation_probability, cfg.objective_switch, cfg.seed, cfg.max_steps)
        self.order = DataOrder(len(self.pairs), cfg.seed ^ PAIR_ORDER)
        self.empty_text = self.pairs.empty_text()

    def check(self, clip_manifest: dict) -> None:
        """The pairs must fit the clips' latent size and text encoder."""
        pair_shape, clip_shape = self.pairs.manifest["latent_shape"][1:], clip_manifest["latent_shape"][1:]
        pair_text, clip_text = self.pairs.manifest["text_shape"], clip_manifest["text_shape"]
        if pair_shape != clip_shape or pair_text != clip_text:
            raise ValueError(f"the pair cache {self.cfg.customisation_cache_dir} (latents {pair_shape}, text {pair_text}) "
                             f"does not fit the clip cache {self.cfg.cache_dir} (latents {clip_shape}, text {clip_text}): "
                             "encode both at one resolution with one VAE and text encoder")

    def prepare(self, model: torch.nn.Module) -> None:
        model.single_frames = True   # the customisation batches are one-frame videos

    def batch(self, samples_seen: int, step: int, rank: int, world_size: int, alphas_cumprod: torch.Tensor,
              device: torch.device) -> PreparedBatch:
        """This process's share of a customisation step's global batch."""
        cfg = self.cfg
        indices, slots = self.order.rank_batch(samples_seen, cfg.batch_size, rank, world_size)
        data = self.pairs.batch(indices)
        lams = prior_lambdas(cfg.noise_prior_lambda, [1.0] * len(indices), cfg.prior_amplitude_coupling,
                             cfg.prior_amplitude_gamma)
        return prepare_customisation_batch(
            data["latents"][:, REFERENCE], data["latents"][:, TARGET], data["text"], alphas_cumprod=alphas_cumprod,
            lam=lams, drop_rate=cfg.text_drop_rate, empty_text=self.empty_text, seed=cfg.seed, step=step,
            slots=slots, device=device, offset_noise=cfg.offset_noise, high_noise_fraction=cfg.high_noise_fraction,
            high_noise_from=cfg.high_noise_from)

    def image_to_video_options(self, step: int, options: dict) -> dict:
        """``prepare_batch``'s text and appearance options for an image-to-video step."""
        cfg = self.cfg
        options = dict(options, appearance_transform=ImageTokenDropping(
            cfg.token_drop_rate, cfg.token_size, cfg.seed, step, cfg.token_fill))
        if not cfg.image_to_video_captions:   # unannotated videos: every clip gets the empty prompt
            options.update(drop_rate=1.0, static_when_dropped=False)
        return options

    def describe(self) -> dict:
        cfg = self.cfg
        return {"customisation_pairs": len(self.pairs), "customisation_probability": cfg.customisation_probability,
                "objective_switch": cfg.objective_switch, "token_drop_rate": cfg.token_drop_rate,
                "token_size": cfg.token_size, "token_fill": cfg.token_fill,
                "image_to_video_captions": cfg.image_to_video_captions}


def customisation_mode(cfg: TrainConfig) -> Optional[CustomisationMode]:
    return CustomisationMode(cfg) if cfg.customisation_cache_dir else None
