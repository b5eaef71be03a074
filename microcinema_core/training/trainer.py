"""The training loop (paper sec. 4): reads only the latent cache, needs only ``microcinema_core``.

One code path for one process or many (``distributed``). Each step: this rank's share of the global
batch (``data_order``), eq. 3-5 (``objective``), backward, gradient clipping, AdamW with two LR groups
and warm-up (``optim``), EMA, metrics (``progress``), periodic atomic checkpoints (``checkpointing``).
At ``max_steps`` the weights (EMA ones when EMA is on) are exported with the core's
``save_checkpoint``: a MicroCinema file whose config metadata records the training ``lambda``.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from ..config import MicroCinemaConfig
from ..diffusion.schedule import DiscreteSchedule
from ..hardware import fast_bf16, training_precision
from ..models.microcinema import MicroCinemaModel
from .caching import LatentCache
from .checkpointing import (checkpoint_dir, latest_checkpoint, load_training_state, prune_checkpoints,
                            save_training_state)
from .data_order import DataOrder, repeats_by_motion
from .distributed import DistContext, all_reduce_mean, barrier, init_distributed, shutdown, wrap_model
from .ema import EMA
from .objective import diffusion_loss, prepare_batch, prior_lambdas
from .objective_switch import customisation_mode
from .optim import build_optimizer, build_scheduler, clip_gradients
from .progress import ProgressReporter
from .samples import write_sample
from .time_reversal import reverse_some
from .train_config import RunConfig, TrainConfig


@dataclass
class TrainResult:
    step: int
    samples_seen: int
    losses: list = field(default_factory=list)   # this rank's loss at each step run here
    export_path: Optional[Path] = None
    resumed_from: Optional[Path] = None


def model_config_for(cfg: TrainConfig, cache: LatentCache) -> MicroCinemaConfig:
    """The model config: preset + overrides, frames/resolution from the cache, the training lambda."""
    n, c, h, w = cache.manifest["latent_shape"]
    base = MicroCinemaConfig.tiny(cfg.kind) if cfg.preset == "tiny" else (
        MicroCinemaConfig.tsr() if cfg.kind == "tsr" else MicroCinemaConfig.base())
    fps = cache.manifest["data_config"]["fps"][0]
    forced = dict(num_frames=n, resolution=h * 8, fps=float(fps), noise_prior_lambda=cfg.noise_prior_lambda)
    if cfg.customisation_cache_dir:   # AppearNet takes the subject reference (docs/customisation.md)
        forced["appearance_input"] = "subject"
    clash = {k: v for k, v in cfg.model_overrides.items() if k in forced and v != forced[k]}
    if clash:
        raise ValueError(f"train.model_overrides {clash} contradict the cache / train.noise_prior_lambda "
                         f"({ {k: forced[k] for k in clash} }); frames and resolution come from the cache")
    config = base.replace(**{**cfg.model_overrides, **forced})
    text_dim = cache.manifest["text_shape"][-1]
    if cache.kind != config.kind:
        raise ValueError(f"the cache holds {cache.kind} clips but train.kind is {config.kind}")
    if text_dim != config.context_dim or c != config.in_channels:
        raise ValueError(f"cache text dim {text_dim} / latent channels {c} do not fit the model "
                         f"(context_dim {config.context_dim}, in_channels {config.in_channels})")
    return config


def build_model(cfg: TrainConfig, config: MicroCinemaConfig) -> MicroCinemaModel:
    """Random init (seeded), an SD2.1 single-file checkpoint (inflated), or a MicroCinema checkpoint."""
    if not cfg.init:
        torch.manual_seed(cfg.seed)
        model = MicroCinemaModel(config)
        if cfg.new_layer_init == "small":
            wake_zero_layers(model)
        return model
    from ..weights.checkpoint import load_checkpoint, read_checkpoint_config
    from ..weights.sd21 import inflate_from_sd21

    try:
        stored = read_checkpoint_config(cfg.init)
    except Exception:
        stored = None
    if stored is None:
        return inflate_from_sd21(cfg.init, config)
    model = load_checkpoint(cfg.init, dtype="fp32", expected_kind=config.kind)
    # the run decides lambda, the parameterisation and the schedule (an eps checkpoint can be fine-tuned into a
    # v model, a model of SD's schedule into one of zero terminal SNR)
    model.config = model.config.replace(noise_prior_lambda=cfg.noise_prior_lambda, prediction=config.prediction,
                                        zero_terminal_snr=config.zero_terminal_snr)
    if config.text_frame_embedding and not model.config.text_frame_embedding:
        model = add_embedding(model, "text_frame_embedding")
    if config.prior_share_embedding and not model.config.prior_share_embedding:
        model = add_embedding(model, "prior_share_embedding")
    return model


GROWN_MODULES = {"text_frame_embedding": "text_frame_embed", "prior_share_embedding": "prior_share_embed"}


def add_embedding(model: MicroCinemaModel, flag: str) -> MicroCinemaModel:
    """The same network plus one (woken) timestep-embedding addition (``flag``: a config switch of
    ``GROWN_MODULES``): every stored tensor kept, nothing else new."""
    module = GROWN_MODULES[flag]
    grown = MicroCinemaModel(model.config.replace(**{flag: True}))
    result = grown.load_state_dict(model.state_dict(), strict=False)
    strangers = [k for k in result.missing_keys if not k.startswith(module + ".")]
    if strangers or result.unexpected_keys:
        raise RuntimeError(f"growing the checkpoint went wrong: missing {strangers[:3]}, unexpected "
                           f"{result.unexpected_keys[:3]}")
    wake_zero_layers(getattr(grown, module))
    return grown


def freeze_all_but(model: MicroCinemaModel, prefixes: tuple) -> None:
    """Only parameters whose names start with one of ``prefixes`` learn (``train.trainable``)."""
    names = [n for n, p in model.named_parameters() if n.startswith(prefixes)]
    if not names:
        raise ValueError(f"train.trainable {list(prefixes)} names no parameter of this model (its modules: "
                         f"{sorted({n.split('.')[0] for n, _ in model.named_parameters()})})")
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(prefixes))


@torch.no_grad()
def wake_zero_layers(model: MicroCinemaModel, scale: float = 0.1) -> None:
    """Give every zero-initialised weight (injection zero convs, SPADE, temporal output layers) 0.1x PyTorch's
    default init. Zero init exists to keep a pretrained SD2.1 intact (sec. 3.1); in a model trained from
    scratch there is nothing to keep, and zero layers pass no gradient to what feeds them until they have
    grown (ControlNet's slow start), which a short CPU run cannot afford. An x0_residual model's head stays
    zero: there it means "start at the interpolation"; the head itself gets gradient at once (its input is not
    zero), and the layers before it once it has grown."""
    residual = isinstance(model, MicroCinemaModel) and model.config.prediction == "x0_residual"
    head = model.unet.out[2] if residual else None
    for module in model.modules():
        if module is head:
            continue
        if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)):
            if module.weight.abs().max() == 0:
                module.reset_parameters()
                module.weight.mul_(scale)
                if module.bias is not None:
                    module.bias.zero_()


def _resume_path(cfg: TrainConfig) -> Optional[Path]:
    if cfg.resume in (None, "", "none", False):
        return None
    if cfg.resume == "auto":
        return latest_checkpoint(cfg.output_dir)
    path = Path(cfg.resume)
    if not path.exists():
        raise FileNotFoundError(f"train.resume: {path} does not exist")
    return path


def train(run: RunConfig, device: Optional[str] = None, stop_at: Optional[int] = None,
          on_checkpoint: Optional[Callable] = None) -> TrainResult:
    """Train until ``max_steps`` (export) or ``stop_at`` (checkpoint, no export).

    ``on_checkpoint(step, model, ema)`` (rank 0) runs after each checkpoint: a place to sample and score.
    """
    cfg = run.train
    ctx = init_distributed(device)
    try:
        return _train(run, cfg, ctx, stop_at, on_checkpoint)
    finally:
        shutdown(ctx)


def _train(run: RunConfig, cfg: TrainConfig, ctx: DistContext, stop_at: Optional[int],
           on_checkpoint: Optional[Callable] = None) -> TrainResult:
    # the model runs channels_last; DDP's bucket views are contiguous: harmless, once per run
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    out = Path(cfg.output_dir)
    cache = LatentCache(cfg.cache_dir)
    config = model_config_for(cfg, cache)
    model = build_model(cfg, config).to(ctx.device)
    if cfg.gradient_checkpointing:
        model.enable_gradient_checkpointing(True)
    model.train()
    if cfg.trainable:
        freeze_all_but(model, cfg.trainable)
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay else None
    if ema is not None and cfg.parallel == "fsdp":
        raise ValueError("train.ema_decay with train.parallel='fsdp' is not supported; use ddp or no EMA")
    custom = customisation_mode(cfg)   # None unless train.customisation_cache_dir (objective_switch.py)
    if custom is not None:
        custom.check(cache.manifest)
        custom.prepare(model)
    # a customisation step leaves the temporal layers unused: DDP must be told
    wrapped = wrap_model(model, ctx, cfg.parallel, find_unused=custom is not None)
    optimizer = build_optimizer(wrapped, cfg)
    scheduler = build_scheduler(optimizer, cfg)

    step, samples_seen, resumed = 0, 0, _resume_path(cfg)
    if resumed is not None:
        info = load_training_state(resumed, model=wrapped, optimizer=optimizer, scheduler=scheduler, ema=ema)
        step, samples_seen = info["step"], info["samples_seen"]

    order = DataOrder(len(cache), cfg.seed, repeats=repeats_by_motion(cache.clips, cfg.motion_repeats))
    abar = DiscreteSchedule.from_config(config).alphas_cumprod
    empty_text = cache.empty_text()
    reversed_text = cache.reversed_text() if cfg.reverse_rate else None
    if cfg.prior_amplitude_coupling and not any("amplitude" in clip for clip in cache.clips):
        raise ValueError(f"train.prior_amplitude_coupling {cfg.prior_amplitude_coupling} needs a cache whose clips record "
                         f"their motion's amplitude ({cfg.cache_dir}: a toy cache built with amplitude_octaves > 0); "
                         "set it to 0 otherwise")
    if cfg.reverse_rate and (reversed_text is None or config.kind != "base"):
        raise ValueError(f"train.reverse_rate {cfg.reverse_rate} needs a base cache with reversed captions "
                         f"({cfg.cache_dir}/reversed_text.safetensors: experiments/reversal.py add_reversed_text); "
                         "set it to 0 otherwise")
    precision = training_precision(ctx.device) if cfg.precision == "auto" else cfg.precision
    if precision == "bf16" and not fast_bf16(ctx.device):
        warnings.warn(f"train.precision='bf16' on {ctx.device}, which has no native bf16: expect it to run many "
                      "times slower than fp32; use precision='auto' or 'fp32'", stacklevel=2)
    autocast = torch.bfloat16 if precision == "bf16" else None
    global_batch = cfg.batch_size * ctx.world_size
    end = cfg.max_steps if stop_at is None else min(stop_at, cfg.max_steps)
    reporter = ProgressReporter(out, cfg.max_steps, step, ctx.is_main, cfg.progress_bar, cfg.tensorboard)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run_config.json").write_text(json.dumps(run.to_dict(), indent=1))
    reporter.event(step, "resume" if resumed else "start", checkpoint=str(resumed) if resumed else None,
                   world_size=ctx.world_size, global_batch=global_batch, clips=len(cache),
                   device=str(ctx.device), backend=ctx.backend)
    result = TrainResult(step, samples_seen, resumed_from=resumed)

    def save(at_step: int) -> None:
        path = checkpoint_dir(out) / f"step_{at_step:08d}.pt"
        save_training_state(path, model=wrapped, optimizer=optimizer, scheduler=scheduler, ema=ema,
                            step=at_step, samples_seen=samples_seen, run_config=run.to_dict(),
                            world_size=ctx.world_size, is_main=ctx.is_main)
        if ctx.is_main:
            prune_checkpoints(out, cfg.keep_last)
            reporter.event(at_step, "checkpoint", path=str(path))
            if on_checkpoint is not None:
                scores = on_checkpoint(at_step, model, ema)
                if scores:
                    reporter.metrics(at_step, scores)
        barrier()

    started = time.perf_counter()
    timed_out = False
    while step < end:
        t0 = time.perf_counter()
        reversed_count = 0
        customising = custom is not None and custom.switch.is_customisation(step)
        if customising:
            batch = custom.batch(samples_seen, step, ctx.rank, ctx.world_size, abar, ctx.device)
        else:
            indices, slots = order.rank_batch(samples_seen, cfg.batch_size, ctx.rank, ctx.world_size)
            data = cache.batch(indices)
            if reversed_text is not None:
                data["latents"], data["text"], reversed_count = reverse_some(
                    data["latents"], data["text"], indices, slots, reversed_text, cfg.reverse_rate, cfg.seed, step)
            lams = prior_lambdas(cfg.noise_prior_lambda, [cache.clips[i].get("amplitude", 1.0) for i in indices],
                                 cfg.prior_amplitude_coupling, cfg.prior_amplitude_gamma)
            options = dict(drop_rate=cfg.text_drop_rate, static_when_dropped=cfg.static_when_dropped)
            if custom is not None:
                options = custom.image_to_video_options(step, options)
            batch = prepare_batch(data["latents"], data["text"], kind=config.kind, cond_idx=cache.condition_indices,
                                  alphas_cumprod=abar, lam=lams, empty_text=empty_text, seed=cfg.seed, step=step,
                                  slots=slots, device=ctx.device, offset_noise=cfg.offset_noise,
                                  high_noise_fraction=cfg.high_noise_fraction, high_noise_from=cfg.high_noise_from,
                                  **options)
        optimizer.zero_grad(set_to_none=True)
        loss = diffusion_loss(wrapped, batch, autocast, prediction=config.prediction, x0_min_snr=cfg.x0_min_snr)
        loss.backward()
        grad_norm = clip_gradients(wrapped.parameters(), cfg.grad_clip)
        lr_now = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(model)
        step += 1
        samples_seen += global_batch
        local = float(loss.detach())
        result.losses.append(local)
        rate = global_batch / max(time.perf_counter() - t0, 1e-9)
        reporter.step(step, local, rate)
        if step % cfg.log_every == 0 or step == end:
            reporter.metrics(step, {
                "loss": float(all_reduce_mean(loss)), "lr": lr_now,
                "grad_norm": float(grad_norm), "samples_per_s": rate,
                "epoch": order.epoch_of(samples_seen), "text_dropped": batch.dropped, "reversed": reversed_count,
                **({"customisation": int(customising)} if custom is not None else {}),
            })
        if cfg.sample_every and step % cfg.sample_every == 0:
            path = write_sample(model, cache, out, step, steps=cfg.sample_steps, cfg=cfg.sample_cfg,
                                gamma=cfg.sample_gamma, device=ctx.device, is_main=ctx.is_main, seed=cfg.seed)
            reporter.event(step, "sample", path=str(path))
        if cfg.max_minutes is not None and time.perf_counter() - started > 60.0 * cfg.max_minutes:
            timed_out = True   # a wall-clock budget: checkpoint and export what the run reached
            end = step
        if step % cfg.save_every == 0 or step == end:
            save(step)

    result.step, result.samples_seen = step, samples_seen
    if step >= cfg.max_steps or timed_out:
        result.export_path = export(wrapped, model, ema, config, cfg, ctx, step, cache,
                                    extra=custom.describe() if custom is not None else None)
        reporter.event(step, "export", path=str(result.export_path))
    reporter.close()
    return result


def export(wrapped, model: MicroCinemaModel, ema: Optional[EMA], config: MicroCinemaConfig,
           cfg: TrainConfig, ctx: DistContext, step: int, cache: LatentCache,
           extra: Optional[dict] = None) -> Optional[Path]:
    """Write the final weights with the core's ``save_checkpoint`` (rank 0); lambda is in the config."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    from ..weights.checkpoint import save_checkpoint

    full = get_model_state_dict(wrapped, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    path = Path(cfg.output_dir) / cfg.export_name
    if ctx.is_main:
        with torch.device("meta"):  # no second random init of a 2 B-parameter model
            final = MicroCinemaModel(config)
        final.load_state_dict(full, assign=True)
        if ema is not None and cfg.export_ema:
            ema.copy_to(final)
        final.config = config
        save_checkpoint(final, path, extra_metadata={
            "microcinema.training": json.dumps({
                "steps": step, "noise_prior_lambda": cfg.noise_prior_lambda,
                "text_drop_rate": cfg.text_drop_rate, "offset_noise": cfg.offset_noise,
                "high_noise_fraction": cfg.high_noise_fraction, "high_noise_from": cfg.high_noise_from, "lr": cfg.lr, "spatial_lr_scale": cfg.spatial_lr_scale,
                "ema": bool(ema is not None and cfg.export_ema), "clips": len(cache),
                "batch_per_process": cfg.batch_size, "world_size": ctx.world_size,
                "reverse_rate": cfg.reverse_rate, "static_when_dropped": cfg.static_when_dropped,
                "motion_repeats": cfg.motion_repeats, **(extra or {}),
            }),
        })
    barrier()
    return path
