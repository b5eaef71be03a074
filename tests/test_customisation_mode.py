"""Issue 36 part 2, the customisation mode of the core, on tiny random models (docs/customisation.md "Model",
"Training"): single-frame customisation batches with the subject reference as AppearNet's input, image-token
dropping with randomised initialisation in the image-to-video batches, the stochastic switch in the trainer; the
same code path on the full-size network (shapes only, on the meta device)."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from safetensors import safe_open

from training_fixtures import TINY_MODEL, StandInEncoder, tiny_run_config

from microcinema_core.config import MicroCinemaConfig
from microcinema_core.diffusion.schedule import DiscreteSchedule
from microcinema_core.errors import MicroCinemaInputError
from microcinema_core.models.microcinema import MicroCinemaModel
from microcinema_core.training.caching import CacheWriter
from microcinema_core.training.customisation_cache import build_pair_cache, open_pair_cache
from microcinema_core.training.customisation_objective import prepare_customisation_batch
from microcinema_core.training.image_tokens import ImageTokenDropping, token_generator, token_mask
from microcinema_core.training.objective import diffusion_loss, prepare_batch
from microcinema_core.training.objective_switch import ObjectiveSwitch
from microcinema_core.training.progress import read_metrics
from microcinema_core.training.train_config import DataConfig, TrainConfig
from microcinema_core.training.trainer import train

ABAR = DiscreteSchedule().alphas_cumprod
CPU = torch.device("cpu")


@dataclass
class Pair:
    reference: torch.Tensor
    target: torch.Tensor
    caption: str
    key: str


def synthetic_pairs(count: int, size: int = 32):
    g = torch.Generator().manual_seed(7)
    for i in range(count):
        yield Pair(torch.rand(3, size, size, generator=g), torch.rand(3, size, size, generator=g), f"thing {i} on grass",
                   f"p{i}")


def clip_cache(folder, count: int = 4, frames: int = 5, size: int = 32):
    """A tiny clip cache straight from random frames (no video files): captions empty, as unannotated videos."""
    encoder = StandInEncoder()
    writer = CacheWriter(folder, DataConfig(kind="base", num_frames=frames, resolution=size), encoder.describe(),
                         dtype=torch.float32)
    writer.set_empty_text(encoder.encode_text([""])[0])
    g = torch.Generator().manual_seed(3)
    for i in range(count):
        writer.add(encoder.encode_video(torch.rand(frames, 3, size, size, generator=g)), encoder.encode_text([""])[0],
                   {"key": f"clip{i}", "caption": ""})
    writer.close()
    return folder


def tiny_model(**overrides) -> MicroCinemaModel:
    torch.manual_seed(0)
    model = MicroCinemaModel(MicroCinemaConfig.tiny("base", resolution=32, **TINY_MODEL, **overrides))
    for module in model.modules():   # wake the zero layers so every branch passes gradient
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)) and module.weight.abs().max() == 0:
            torch.nn.init.normal_(module.weight, std=0.02)
    return model


def test_a_customisation_batch_is_eq_3_4_on_one_frame_with_the_reference_as_appearance():
    g = torch.Generator().manual_seed(1)
    refs, targets = torch.randn(3, 4, 4, 4, generator=g), torch.randn(3, 4, 4, 4, generator=g)
    text, empty = torch.randn(3, 77, 32, generator=g), torch.zeros(77, 32)
    batch = prepare_customisation_batch(refs, targets, text, alphas_cumprod=ABAR, lam=0.03, drop_rate=0.0,
                                        empty_text=empty, seed=0, step=5, slots=[0, 1, 2], device=CPU)
    assert batch.num_frames == 1 and batch.x.shape == (3, 4, 4, 4) and torch.equal(batch.appearance, refs)
    abar = ABAR[batch.timesteps.long()].view(-1, 1, 1, 1)
    assert torch.allclose(batch.x, abar.sqrt() * targets + (1 - abar).sqrt() * batch.target, atol=1e-6)   # eq. 4
    eps_n = batch.target - 0.03 * refs                                                                     # eq. 3
    assert abs(float(eps_n.mean())) < 0.2 and abs(float(eps_n.std()) - 1) < 0.2
    assert torch.equal(batch.context, text) and batch.dropped == 0
    again = prepare_customisation_batch(refs, targets, text, alphas_cumprod=ABAR, lam=0.03, drop_rate=1.0,
                                        empty_text=empty, seed=0, step=5, slots=[0, 1, 2], device=CPU)
    assert torch.equal(again.x, batch.x) and again.dropped == 3 and not again.context.any()   # same draws


def test_generate_makes_one_frame_only_for_a_model_that_takes_one_frame_videos():
    """The subject model's one-image path (``keyframe_first_pilot``): ``generate`` with ``num_frames=1`` is the
    paper's sampler on a one-frame video: one Euler step from the prior's start returns the guided prediction there."""
    from microcinema_core.diffusion.noise_prior import prior_mean, start_latent
    from microcinema_core.diffusion.pipeline import GuidedDenoiser, generate

    model = tiny_model().eval()
    g = torch.Generator().manual_seed(4)
    reference, context, uncond = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 77, 32, generator=g), None
    with pytest.raises(MicroCinemaInputError, match="at least 2"):
        generate(model, reference, context, num_frames=1, steps=2, cfg=1.0)
    model.single_frames = True
    frames = generate(model, reference, context, num_frames=1, steps=3, cfg=1.0, gamma=0.1, seed=7)
    assert frames.shape == reference.shape and torch.isfinite(frames).all()
    one_step = generate(model, reference, context, num_frames=1, steps=1, cfg=1.0, gamma=0.1, seed=7)
    schedule = DiscreteSchedule.from_config(model.config)
    sigma = schedule.sigmas_for(1, "normal")[0]
    noise = torch.randn(reference.shape, generator=torch.Generator().manual_seed(7))
    start = start_latent(noise, prior_mean(reference, model.config.noise_prior_lambda, 0.1), float(sigma))
    with torch.no_grad():
        expected = GuidedDenoiser(model, schedule, context, uncond, reference, 1, 1.0)(start, sigma)
    torch.testing.assert_close(one_step, expected)
    assert not torch.allclose(one_step, frames)


def test_the_model_takes_one_frame_only_in_training_and_then_leaves_its_temporal_layers_alone():
    model = tiny_model()
    g = torch.Generator().manual_seed(2)
    x, a = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)
    t, c = torch.tensor([500.0, 20.0]), torch.randn(2, 77, 32, generator=g)
    with pytest.raises(MicroCinemaInputError, match="at least 2"):
        model(x, t, c, a, 1)
    model.single_frames = True
    batch = prepare_customisation_batch(a, x, c, alphas_cumprod=ABAR, lam=0.03, drop_rate=0.1, empty_text=None,
                                        seed=0, step=0, slots=[0, 1], device=CPU)
    loss = diffusion_loss(model, batch, None)
    loss.backward()
    temporal = {n: p.grad for n, p in model.named_parameters() if "temporal_" in n}
    others = {n: p.grad for n, p in model.named_parameters() if "temporal_" not in n}
    assert temporal and all(grad is None for grad in temporal.values())
    assert any(n.startswith("appearnet.") and grad is not None and grad.abs().sum() > 0 for n, grad in others.items())
    with torch.no_grad():   # whatever the temporal layers hold, a one-frame pass does not see it
        before = model(batch.x, batch.timesteps, batch.context, batch.appearance, 1)
        for n, p in model.named_parameters():
            if "temporal_" in n:
                p.mul_(100.0)
        assert torch.equal(before, model(batch.x, batch.timesteps, batch.context, batch.appearance, 1))


def test_token_dropping_replaces_whole_tokens_with_randomised_values_and_the_prior_follows():
    g = torch.Generator().manual_seed(4)
    latents = torch.randn(2, 5, 4, 8, 8, generator=g) * 0.8 + 0.3     # two 5-frame clips, 8x8 latents
    text = torch.randn(2, 77, 32, generator=g)
    common = dict(kind="base", cond_idx=[2], alphas_cumprod=ABAR, lam=0.03, drop_rate=0.0, empty_text=None, seed=9,
                  step=3, slots=[0, 1], device=CPU)
    plain = prepare_batch(latents, text, **common)
    dropped = prepare_batch(latents, text, appearance_transform=ImageTokenDropping(0.5, 2, 9, 3), **common)
    assert torch.equal(plain.timesteps, dropped.timesteps)
    # eq. 3 with the randomised input: the same eps_n, the prior's mean moved with AppearNet's input
    assert torch.allclose(dropped.target - plain.target, 0.03 * (dropped.appearance - plain.appearance), atol=1e-6)
    app, orig = dropped.appearance.view(2, 5, 4, 8, 8), plain.appearance.view(2, 5, 4, 8, 8)
    for b in range(2):
        assert all(torch.equal(app[b, 0], app[b, n]) for n in range(5))          # same tokens in every copy
        changed = (app[b, 0] != orig[b, 0]).any(dim=0)                           # [8, 8]
        blocks = changed.view(4, 2, 4, 2).permute(0, 2, 1, 3).reshape(16, 4)
        assert bool((blocks.all(dim=1) | ~blocks.any(dim=1)).all())               # whole 2x2 tokens only
        mask = token_mask(8, 8, 2, 0.5, token_generator(9, 3, b))
        assert torch.equal(changed, mask) and 0 < int(mask.sum()) < 64
    many = torch.stack([token_mask(40, 40, 2, 0.5, token_generator(0, s, 0)) for s in range(50)]).float()
    assert abs(float(many.mean()) - 0.5) < 0.02                                   # the drop rate
    big = torch.randn(1, 4, 40, 40, generator=g) * torch.tensor([0.5, 1.0, 2.0, 1.5]).view(1, 4, 1, 1) + 1.0
    out = ImageTokenDropping(1.0, 2, 0, 0)(big.expand(3, -1, -1, -1), 0)[0]     # every token randomised
    assert torch.allclose(out.mean(dim=(1, 2)), big[0].mean(dim=(1, 2)), atol=0.2)
    assert torch.allclose(out.std(dim=(1, 2)), big[0].std(dim=(1, 2)), rtol=0.15)
    assert not torch.equal(out, big[0])
    blank = ImageTokenDropping(1.0, 2, 0, 0, fill="mean")(big, 0)[0]
    assert torch.allclose(blank, big[0].mean(dim=(1, 2), keepdim=True).expand_as(blank))
    assert torch.equal(ImageTokenDropping(0.0, 2, 0, 0)(big, 0), big)


def test_the_switch_is_seeded_per_step_at_its_probability_and_sequential_is_its_comparison():
    draws = [ObjectiveSwitch(0.3, "stochastic", 5, 100).is_customisation(s) for s in range(4000)]
    assert abs(sum(draws) / 4000 - 0.3) < 0.03
    assert draws == [ObjectiveSwitch(0.3, "stochastic", 5, 100).is_customisation(s) for s in range(4000)]
    assert draws != [ObjectiveSwitch(0.3, "stochastic", 6, 100).is_customisation(s) for s in range(4000)]
    assert not any(ObjectiveSwitch(0.0, "stochastic", 0, 10).is_customisation(s) for s in range(500))
    assert all(ObjectiveSwitch(1.0, "stochastic", 0, 10).is_customisation(s) for s in range(500))
    assert [ObjectiveSwitch(0.3, "sequential", 0, 10).is_customisation(s) for s in range(10)] == [True] * 3 + [False] * 7
    with pytest.raises(ValueError, match="customisation_cache_dir is for kind 'base'"):
        TrainConfig(kind="tsr", customisation_cache_dir="pairs")
    with pytest.raises(ValueError, match="objective_switch"):
        TrainConfig(objective_switch="sometimes")


def test_the_trainer_switches_objectives_resumes_exactly_and_exports_a_subject_model(tmp_path):
    clips = clip_cache(tmp_path / "clips")
    assert build_pair_cache(synthetic_pairs(6), StandInEncoder(), tmp_path / "pairs", size=32,
                            dtype=torch.float32) == 6
    assert len(open_pair_cache(tmp_path / "pairs")) == 6
    with pytest.raises(ValueError, match="not a customisation pair cache"):
        open_pair_cache(clips)
    common = dict(max_steps=8, warmup_steps=2, customisation_cache_dir=str(tmp_path / "pairs"),
                  customisation_probability=0.5, text_drop_rate=0.2, new_layer_init="small")
    straight = train(tiny_run_config(clips, tmp_path / "straight", **common))
    rows = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    chosen = [r["customisation"] for r in rows]
    assert chosen == [int(ObjectiveSwitch(0.5, "stochastic", 0, 8).is_customisation(s)) for s in range(8)]
    assert 0 < sum(chosen) < 8
    assert all(r["text_dropped"] == 2 for r in rows if not r["customisation"])   # no captions on the clips
    assert all(torch.isfinite(torch.tensor(straight.losses)))
    train(tiny_run_config(clips, tmp_path / "split", **common), stop_at=3)
    resumed = train(tiny_run_config(clips, tmp_path / "split", **common))
    assert resumed.losses == straight.losses[3:]
    with safe_open(str(straight.export_path), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["microcinema.config"])["appearance_input"] == "subject"
    assert json.loads(meta["microcinema.training"])["customisation_pairs"] == 6


def predict(model, batch):
    """``diffusion_loss``'s model call (its autocast has no meta device)."""
    return model(batch.x, batch.timesteps, batch.context, batch.appearance, batch.num_frames)


def test_the_full_size_network_runs_both_objectives_on_the_same_path():
    """Shapes only (meta device): the 2 B-parameter base in customisation mode, one frame and nine."""
    config = MicroCinemaConfig.base(appearance_input="subject")
    with torch.device("meta"):
        model = MicroCinemaModel(config)
    model.single_frames = True
    meta = torch.device("meta")
    g = torch.Generator().manual_seed(0)
    refs = torch.randn(2, 4, 40, 40, generator=g)
    custom = prepare_customisation_batch(refs, refs.flip(-1), torch.randn(2, 77, 1024, generator=g),
                                         alphas_cumprod=ABAR, lam=0.03, drop_rate=0.1, empty_text=None, seed=0,
                                         step=0, slots=[0, 1], device=meta)
    assert predict(model, custom).shape == (2, 4, 40, 40)
    clips = torch.randn(1, 9, 4, 40, 40, generator=g)
    i2v = prepare_batch(clips, torch.zeros(1, 77, 1024), kind="base", cond_idx=[4], alphas_cumprod=ABAR, lam=0.03,
                        drop_rate=1.0, empty_text=None, seed=0, step=1, slots=[0], device=meta,
                        appearance_transform=ImageTokenDropping(0.5, 2, 0, 1))
    assert predict(model, i2v).shape == (9, 4, 40, 40)
    with pytest.raises(ValueError, match="appearance_input"):
        MicroCinemaConfig.tsr(appearance_input="subject")
