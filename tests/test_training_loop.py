"""The training loop on a tiny model, CPU: it learns, it resumes bit-exactly, it exports a loadable file."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from training_fixtures import TINY_MODEL, build_test_cache, tiny_run_config

from microcinema_core.diffusion.schedule import DiscreteSchedule
from microcinema_core.training.caching import LatentCache
from microcinema_core.training.checkpointing import list_checkpoints
from microcinema_core.training.objective import diffusion_loss, prepare_batch
from microcinema_core.training.optim import build_optimizer, lr_factor, split_parameters
from microcinema_core.training.progress import read_metrics
from microcinema_core.training.trainer import build_model, model_config_for, train
from microcinema_core.weights.checkpoint import load_checkpoint, read_checkpoint_config


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return build_test_cache(tmp_path_factory.mktemp("train_cache"), count=4, num_frames=5)


@torch.no_grad()
def fixed_eval_loss(model, cache_dir, lam=0.03, repeats=4) -> float:
    """Eq. 5 on every clip at fixed (t, noise) draws: comparable before and after training."""
    cache = LatentCache(cache_dir)
    abar = DiscreteSchedule().alphas_cumprod
    data = cache.batch(list(range(len(cache))))
    losses = []
    for r in range(repeats):
        batch = prepare_batch(data["latents"], data["text"], kind="base", cond_idx=cache.condition_indices,
                              alphas_cumprod=abar, lam=lam, drop_rate=0.0, empty_text=None, seed=1234,
                              step=r, slots=list(range(len(cache))), device=torch.device("cpu"))
        losses.append(float(diffusion_loss(model, batch, None)))
    return sum(losses) / len(losses)


def test_tiny_model_overfits_a_handful_of_clips(cache, tmp_path):
    run = tiny_run_config(cache, tmp_path / "run", max_steps=30, lr=3e-3, spatial_lr_scale=1.0,
                          warmup_steps=3, text_drop_rate=0.0, log_every=5)
    config = model_config_for(run.train, LatentCache(cache))
    before = fixed_eval_loss(build_model(run.train, config).eval(), cache)
    result = train(run)
    after = fixed_eval_loss(load_checkpoint(result.export_path).eval(), cache)
    print(f"fixed-draw loss before {before:.4f} after {after:.4f}")
    assert before > 0.8
    assert after < 0.6 * before, (before, after)
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25, 30]
    assert all(r["samples_per_s"] > 0 and r["lr"] > 0 for r in rows)


def test_resume_is_bitwise_exact(cache, tmp_path):
    common = dict(max_steps=6, warmup_steps=4, ema_decay=0.9, text_drop_rate=0.5, lr_schedule="cosine")
    straight = train(tiny_run_config(cache, tmp_path / "straight", **common))
    first = train(tiny_run_config(cache, tmp_path / "split", **common), stop_at=3)
    assert first.step == 3 and first.export_path is None
    assert [p.name for p in list_checkpoints(tmp_path / "split")] == ["step_00000003.pt"]
    second = train(tiny_run_config(cache, tmp_path / "split", **common))
    assert second.resumed_from is not None and second.resumed_from.name == "step_00000003.pt"
    assert second.losses == straight.losses[3:]
    a, b = load_file(str(straight.export_path)), load_file(str(second.export_path))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the straight run"
    sa = torch.load(list_checkpoints(tmp_path / "straight")[-1], weights_only=True)
    sb = torch.load(list_checkpoints(tmp_path / "split")[-1], weights_only=True)
    assert sa["samples_seen"] == sb["samples_seen"] == 12
    for k, v in sa["optimizer"]["state"].items():
        assert torch.equal(v["exp_avg_sq"], sb["optimizer"]["state"][k]["exp_avg_sq"])
    assert all(torch.equal(sa["ema"]["shadow"][k], sb["ema"]["shadow"][k]) for k in sa["ema"]["shadow"])


def test_export_is_a_microcinema_checkpoint_with_lambda(cache, tmp_path):
    run = tiny_run_config(cache, tmp_path / "run", max_steps=2, noise_prior_lambda=0.05, ema_decay=0.5,
                          sample_every=2, sample_steps=2, save_every=1, keep_last=1)
    result = train(run)
    # periodic checkpoints are pruned to keep_last, and no temporary file is left behind
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["step_00000002.pt"]
    sample = load_file(str(tmp_path / "run" / "samples" / "step_00000002.safetensors"))
    assert sample["latents"].shape == (5, 4, 4, 4) and torch.isfinite(sample["latents"]).all()
    config = read_checkpoint_config(result.export_path)
    assert config.noise_prior_lambda == 0.05 and config.num_frames == 5 and config.kind == "base"
    model = load_checkpoint(result.export_path)
    assert model.config.resolution == 32
    from safetensors import safe_open

    with safe_open(str(result.export_path), "pt") as f:
        meta = json.loads(f.metadata()["microcinema.training"])
    assert meta["steps"] == 2 and meta["ema"] is True and meta["noise_prior_lambda"] == 0.05
    events = read_metrics(tmp_path / "run" / "metrics.jsonl", event="export")
    assert events and events[0]["path"] == str(result.export_path)
    # a checkpoint exported by hand (a run stopped early, a committed copy) is the file the trainer wrote at the end
    from microcinema_core.training.export_checkpoint import export_checkpoint

    by_hand = export_checkpoint(tmp_path / "run" / "checkpoints" / "step_00000002.pt", tmp_path / "by_hand.safetensors",
                                dtype="fp32")
    assert read_checkpoint_config(by_hand) == config
    ours, theirs = load_file(str(by_hand)), load_file(str(result.export_path))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_two_learning_rates_and_warmup(cache):
    run = tiny_run_config(cache, "unused", lr=2e-5, spatial_lr_scale=0.1, warmup_steps=10)
    model = build_model(run.train, model_config_for(run.train, LatentCache(cache)))
    new, spatial = split_parameters(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert new and spatial
    assert all(("temporal" in names[id(p)] or "spade" in names[id(p)] or names[id(p)].startswith("injection."))
               for p in new)
    assert not any("temporal" in names[id(p)] for p in spatial)
    opt = build_optimizer(model, run.train)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"temporal_and_injection": 2e-5, "spatial": pytest.approx(2e-6)}
    assert lr_factor(0, run.train) == pytest.approx(0.1) and lr_factor(9, run.train) == 1.0
    assert lr_factor(500, run.train) == 1.0


def test_the_prior_share_embedding_can_have_its_own_rate(cache):
    run = tiny_run_config(cache, "unused", lr=1e-4, spatial_lr_scale=1.0, embedding_lr_scale=10.0,
                          model_overrides=dict(TINY_MODEL, prior_share_embedding=True))
    model = build_model(run.train, model_config_for(run.train, LatentCache(cache)))
    groups = {g["name"]: g for g in build_optimizer(model, run.train).param_groups}
    assert groups["prior_share_embedding"]["lr"] == pytest.approx(1e-3)
    own = {id(p) for p in model.prior_share_embed.parameters()}
    assert {id(p) for p in groups["prior_share_embedding"]["params"]} == own
    assert not own & {id(p) for p in groups["temporal_and_injection"]["params"]}
    every = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(every) == sorted(id(p) for p in model.parameters() if p.requires_grad)   # each once


def test_trainable_prefixes_leave_every_other_weight_as_it_was(cache, tmp_path):
    from microcinema_core.weights.checkpoint import save_checkpoint

    overrides = dict(TINY_MODEL, prior_share_embedding=True)
    start = build_model(tiny_run_config(cache, "unused", model_overrides=overrides).train,
                        model_config_for(tiny_run_config(cache, "unused", model_overrides=overrides).train,
                                         LatentCache(cache)))
    init = tmp_path / "init.safetensors"
    save_checkpoint(start, init, dtype="fp32")
    run = tiny_run_config(cache, tmp_path / "run", model_overrides=overrides, max_steps=2, lr=1e-2,
                          init=str(init), trainable=["prior_share_embed."])
    trained = load_file(str(train(run).export_path))
    before = load_file(str(init))
    changed = {k for k in before if not torch.equal(before[k], trained[k])}
    assert changed and all(k.startswith("prior_share_embed.") for k in changed), sorted(changed)[:5]
    with pytest.raises(ValueError, match="names no parameter"):
        train(tiny_run_config(cache, tmp_path / "bad", model_overrides=overrides, max_steps=1, init=str(init),
                              trainable=["no_such_module."]))


def test_training_starts_from_an_sd21_single_file(cache, tmp_path):
    """train.init = an SD2.1-format file (ComfyUI's own U-Net class at the tiny size, random weights)."""
    from safetensors.torch import save_file

    from core_helpers import comfy_sd21_unet

    # ComfyUI's U-Net has 32 norm groups: 32 channels here
    run = tiny_run_config(cache, tmp_path / "run", max_steps=1, model_overrides={
        "channel_mult": [1, 2], "num_res_blocks": 1, "attention_levels": [1], "context_dim": 32})
    config = model_config_for(run.train, LatentCache(cache))
    unet = comfy_sd21_unet(config, seed=5).state_dict()
    path = tmp_path / "sd21_tiny.safetensors"
    save_file({f"model.diffusion_model.{k}": v.contiguous() for k, v in unet.items()}, str(path))
    run.train.init = str(path)
    model = build_model(run.train, config)
    own = model.unet.state_dict()
    shared = [k for k in unet if k in own]
    assert len(shared) > 0.9 * len(unet)
    assert all(torch.equal(own[k], unet[k].float()) for k in shared)
    zero_init = [p for n, p in model.named_parameters() if "temporal_conv_out" in n]
    assert zero_init and all(float(p.detach().abs().max()) == 0 for p in zero_init)
    result = train(run)
    assert result.step == 1 and result.export_path.exists()


def test_prepared_batch_follows_eq_3_and_4_for_base_and_tsr():
    abar = DiscreteSchedule().alphas_cumprod
    latents = torch.randn(3, 5, 4, 4, 4)
    text = torch.randn(3, 77, 8)
    empty = torch.full((77, 8), 7.0)
    for kind, cond_idx in (("base", [2]), ("tsr", [0, 4])):
        b = prepare_batch(latents, text, kind=kind, cond_idx=cond_idx, alphas_cumprod=abar, lam=0.5,
                          drop_rate=0.5, empty_text=empty, seed=3, step=11, slots=[0, 1, 2],
                          device=torch.device("cpu"))
        assert b.x.shape == b.target.shape == b.appearance.shape == (15, 4, 4, 4)
        app = b.appearance.view(3, 5, 4, 4, 4)
        if kind == "base":                                      # [z^c]*N, z^c the centre frame
            assert torch.equal(app, latents[:, 2:3].expand_as(app))
        else:                                                   # linear from the first to the last frame
            assert torch.allclose(app[:, 0], latents[:, 0]) and torch.allclose(app[:, -1], latents[:, -1])
            assert torch.allclose(app[:, 2], 0.5 * (latents[:, 0] + latents[:, -1]), atol=1e-6)
        a = abar[b.timesteps.long()].view(3, 1, 1, 1, 1)
        z0 = latents
        eps = b.target.view(3, 5, 4, 4, 4)
        assert torch.allclose(b.x.view(3, 5, 4, 4, 4), a.sqrt() * z0 + (1 - a).sqrt() * eps, atol=1e-6)  # eq. 4
        eps_n = eps - 0.5 * app                                 # eq. 3: the rest is N(0, I)
        assert abs(float(eps_n.mean())) < 0.15 and abs(float(eps_n.std()) - 1) < 0.15
        for i in range(3):
            assert torch.equal(b.context[i], empty) or torch.equal(b.context[i], text[i])
        # same (seed, step, slot) -> same draws, whatever else is in the batch
        single = prepare_batch(latents[1:2], text[1:2], kind=kind, cond_idx=cond_idx, alphas_cumprod=abar,
                               lam=0.5, drop_rate=0.5, empty_text=empty, seed=3, step=11, slots=[1],
                               device=torch.device("cpu"))
        assert torch.equal(single.target, b.target[5:10]) and torch.equal(single.timesteps, b.timesteps[1:2])


def test_high_noise_emphasis_draws_that_share_of_timesteps_from_the_top():
    abar = DiscreteSchedule().alphas_cumprod
    latents, text = torch.randn(1, 3, 4, 2, 2), torch.randn(1, 77, 8)

    def timesteps(fraction):
        return torch.cat([prepare_batch(latents, text, kind="base", cond_idx=[1], alphas_cumprod=abar, lam=0.03,
                                        drop_rate=0.0, empty_text=None, seed=5, step=step, slots=[0],
                                        device=torch.device("cpu"), high_noise_fraction=fraction,
                                        high_noise_from=900).timesteps for step in range(600)])

    uniform, focused = timesteps(0.0), timesteps(0.6)
    top_uniform, top_focused = float((uniform >= 900).float().mean()), float((focused >= 900).float().mean())
    assert abs(top_uniform - 0.1) < 0.04                       # off: t ~ U{0..999} as in the paper
    assert abs(top_focused - (0.6 + 0.4 * 0.1)) < 0.06         # on: 60 % from the top, the rest uniform
    assert torch.equal(timesteps(0.6), focused)                # deterministic by (seed, step, slot)


def test_static_when_dropped_turns_text_dropped_clips_into_the_still_keyframe():
    abar = DiscreteSchedule().alphas_cumprod
    latents, text = torch.randn(6, 5, 4, 2, 2), torch.randn(6, 77, 8)
    empty = torch.zeros(77, 8)

    def batch(still, kind="base"):
        return prepare_batch(latents, text, kind=kind, cond_idx=[2], alphas_cumprod=abar, lam=0.03, drop_rate=0.5,
                             empty_text=empty, seed=9, step=0, slots=list(range(6)), device=torch.device("cpu"),
                             static_when_dropped=still)

    plain, still = batch(False), batch(True)
    dropped = [b for b in range(6) if torch.equal(still.context[b], empty)]
    assert 0 < len(dropped) < 6 and plain.dropped == still.dropped == len(dropped)
    x_plain, x_still = plain.x.view(6, 5, 4, 2, 2), still.x.view(6, 5, 4, 2, 2)
    abar_t = still.abar.view(6, 5)[:, 0]
    for b in range(6):
        if b in dropped:     # the noisy input is the keyframe (frame 2) held still, with the same noise
            expected = abar_t[b].sqrt() * latents[b, 2] + (1 - abar_t[b]).sqrt() * still.target.view(6, 5, 4, 2, 2)[b]
            assert torch.allclose(x_still[b], expected, atol=1e-5) and not torch.allclose(x_still[b], x_plain[b])
        else:                # captioned clips are untouched
            assert torch.equal(x_still[b], x_plain[b])
    with pytest.raises(ValueError, match="base"):
        batch(True, kind="tsr")
    from microcinema_core.training.train_config import TrainConfig

    with pytest.raises(ValueError, match="train.static_when_dropped"):   # caught with the config, before any work
        TrainConfig(kind="tsr", static_when_dropped=True)


def test_motion_repeats_draw_that_motion_more_often_each_epoch():
    from microcinema_core.training.data_order import DataOrder, repeats_by_motion

    clips = [{"motion": m} for m in ("static", "pan_left", "pan_right", "zoom_in")]
    repeats = repeats_by_motion(clips, {"static": 4})
    assert repeats == [4, 1, 1, 1] and repeats_by_motion(clips, {}) is None
    order = DataOrder(len(clips), seed=3, repeats=repeats)
    first_epoch = order.indices(0, 7)
    assert sorted(first_epoch) == [0, 0, 0, 0, 1, 2, 3]        # an epoch holds every clip, static 4x
    assert order.indices(7, 7) != first_epoch and sorted(order.indices(7, 7)) == sorted(first_epoch)
    assert DataOrder(len(clips), seed=3, repeats=repeats).indices(0, 14) == order.indices(0, 14)
    assert DataOrder(len(clips), seed=3).indices(0, 4) == DataOrder(len(clips), seed=3, repeats=[1] * 4).indices(0, 4)
    with pytest.warns(UserWarning, match="zoom_out"):
        assert repeats_by_motion(clips, {"zoom_out": 2}) == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="repeats"):
        DataOrder(len(clips), seed=3, repeats=[1, 0, 1, 1])


def test_tsr_trains_without_text_and_exports_a_tsr_file(tmp_path):
    cache = build_test_cache(tmp_path / "data", kind="tsr", count=2, num_frames=5)
    run = tiny_run_config(cache, tmp_path / "run", kind="tsr", max_steps=2, text_drop_rate=1.0)
    result = train(run)
    assert read_checkpoint_config(result.export_path).kind == "tsr"
    assert all(r["text_dropped"] == 2 for r in read_metrics(tmp_path / "run" / "metrics.jsonl"))


def test_gradient_checkpointing_gives_the_same_update_and_bf16_runs(cache, tmp_path):
    plain = train(tiny_run_config(cache, tmp_path / "plain", max_steps=2))
    ckpt = train(tiny_run_config(cache, tmp_path / "ckpt", max_steps=2, gradient_checkpointing=True))
    a, b = load_file(str(plain.export_path)), load_file(str(ckpt.export_path))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    assert plain.losses == pytest.approx(ckpt.losses, abs=1e-6)
    bf16 = train(tiny_run_config(cache, tmp_path / "bf16", max_steps=2, precision="bf16"))
    assert all(abs(x - y) < 0.05 for x, y in zip(bf16.losses, plain.losses))  # bf16 autocast, fp32 loss


def test_precision_auto_follows_the_hardware_and_slow_bf16_is_named(cache, tmp_path, monkeypatch):
    import microcinema_core.training.trainer as trainer

    assert tiny_run_config(cache, tmp_path / "x").train.precision == "fp32"   # the fixture pins fp32
    monkeypatch.setattr(trainer, "fast_bf16", lambda device: False)
    monkeypatch.setattr(trainer, "training_precision", lambda device: "fp32")
    with pytest.warns(UserWarning, match="no native bf16"):
        train(tiny_run_config(cache, tmp_path / "slow", max_steps=1, precision="bf16"))
    auto = train(tiny_run_config(cache, tmp_path / "auto", max_steps=1, precision="auto"))
    fp32 = train(tiny_run_config(cache, tmp_path / "fp32", max_steps=1))
    assert auto.losses == fp32.losses                                          # auto chose fp32 here


def two_clip_batch(cache):
    """A base batch of the cache's first two clips (no text dropped): ``(batch, z_0, abar_t per frame)``."""
    abar = DiscreteSchedule().alphas_cumprod
    data = LatentCache(cache).batch([0, 1])
    batch = prepare_batch(data["latents"], data["text"], kind="base", cond_idx=LatentCache(cache).condition_indices,
                          alphas_cumprod=abar, lam=0.03, drop_rate=0.0, empty_text=None, seed=7, step=0,
                          slots=[0, 1], device=torch.device("cpu"))
    a = abar[batch.timesteps.long()].repeat_interleave(batch.num_frames).view(-1, 1, 1, 1)
    return batch, data["latents"].reshape(batch.x.shape), a


def test_v_prediction_returns_eps_and_trains_on_the_v_error(cache, tmp_path):
    """prediction "v": forward converts the head's v to eps; the loss is the v error; it trains, exports, reloads."""
    torch.manual_seed(0)
    v_model = dict(TINY_MODEL, prediction="v")
    run = tiny_run_config(cache, tmp_path / "run", max_steps=3, model_overrides=v_model)
    model = build_model(run.train, model_config_for(run.train, LatentCache(cache)))
    assert model.config.prediction == "v"
    with torch.no_grad():
        model.unet.out[2].weight.zero_()
        model.unet.out[2].bias.zero_()                          # the head says v = 0
    batch, z0, a = two_clip_batch(cache)
    with torch.no_grad():
        eps_hat = model(batch.x, batch.timesteps, batch.context, batch.appearance, batch.num_frames)
        assert torch.allclose(eps_hat, (1 - a).sqrt() * batch.x, atol=1e-6)     # eps = sqrt(1-a) z_t + sqrt(a) 0
        v = a.sqrt() * batch.target - (1 - a).sqrt() * z0
        v_loss = float(diffusion_loss(model, batch, None, prediction="v"))
        assert v_loss == pytest.approx(float((v ** 2).mean()), rel=1e-4)          # || 0 - v ||^2
        assert v_loss != pytest.approx(float(diffusion_loss(model, batch, None)), rel=1e-2)
    result = train(run)
    assert read_checkpoint_config(result.export_path).prediction == "v"
    reloaded = load_checkpoint(result.export_path, dtype="fp32")
    assert reloaded.config.prediction == "v"
    # an eps checkpoint fine-tuned with prediction "v" becomes a v model (the run decides)
    eps_run = train(tiny_run_config(cache, tmp_path / "eps", max_steps=1))
    assert read_checkpoint_config(eps_run.export_path).prediction == "eps"
    tuned = build_model(tiny_run_config(cache, tmp_path, init=str(eps_run.export_path)).train,
                        model_config_for(run.train, LatentCache(cache)))
    assert tuned.config.prediction == "v"


def test_a_residual_model_starts_at_its_appearance_input_and_trains_on_the_min_snr_weighted_z0_error(cache, tmp_path):
    """prediction "x0_residual": the head stays zero when the other zero layers wake ("small" init), so the untrained
    model's z_0 is its appearance input; the loss is min(SNR_t, 5) times the z_0 error; it trains and reloads."""
    from microcinema_core.training.objective import min_snr_weight

    torch.manual_seed(0)
    run = tiny_run_config(cache, tmp_path / "run", max_steps=3, new_layer_init="small",
                          model_overrides=dict(TINY_MODEL, prediction="x0_residual"))
    model = build_model(run.train, model_config_for(run.train, LatentCache(cache)))
    assert model.config.prediction == "x0_residual"
    weights = {name: float(p.detach().abs().max()) for name, p in model.named_parameters()}
    assert weights["unet.out.2.weight"] == 0.0                                   # kept zero ...
    assert all(v > 0 for n, v in weights.items() if n.startswith("injection.") and n.endswith("weight"))  # others woke
    batch, z0, a = two_clip_batch(cache)
    with torch.no_grad():
        eps_hat = model(batch.x, batch.timesteps, batch.context, batch.appearance, batch.num_frames)
        z0_hat = (batch.x - (1 - a).sqrt() * eps_hat) / a.sqrt()
        assert torch.allclose(z0_hat, batch.appearance, atol=1e-4)             # ... so z_0 = the appearance input
        snr = a / (1 - a)
        want = float((snr.clamp(max=5.0) * (z0_hat - z0) ** 2).mean())
        loss = float(diffusion_loss(model, batch, None, prediction="x0_residual"))
        assert loss == pytest.approx(want, rel=1e-3)
        plain = float(((z0_hat - z0) ** 2).mean())                           # train.x0_min_snr None: weight 1
        assert plain > want                                                  # (the high-noise steps now count)
        assert float(diffusion_loss(model, batch, None, prediction="x0_residual", x0_min_snr=None)) == \
            pytest.approx(plain, rel=1e-3)
    assert torch.allclose(min_snr_weight(torch.tensor([0.5, 1 / 6, 0.9])), torch.tensor([1.0, 1.0, 5 * 0.1 / 0.9]))
    with pytest.raises(ValueError, match="x0_min_snr"):
        tiny_run_config(cache, tmp_path / "bad", x0_min_snr=0.0)
    result = train(run)
    reloaded = load_checkpoint(result.export_path, dtype="fp32")
    assert reloaded.config.prediction == "x0_residual"
    assert float(reloaded.unet.out[2].weight.detach().abs().max()) > 0.0                # training moved the head


def test_the_prior_coupled_to_the_amplitude_noises_each_clip_with_its_own_lambda(cache, tmp_path):
    from microcinema_core.training.objective import prior_lambdas

    # gamma 0.02 at amplitude 1; each 0.04 more gamma halves the motion
    assert prior_lambdas(0.03, [1.0, 0.5, 2.0], 0.04, 0.02) == pytest.approx([0.05, 0.09, 0.01])
    assert prior_lambdas(0.03, [1.0, 0.5], 0.0, 0.02) == [0.03, 0.03]           # off: eq. 3's single lambda
    abar = DiscreteSchedule().alphas_cumprod
    latents = torch.randn(2, 9, 4, 8, 8) + 3.0
    b = prepare_batch(latents, torch.randn(2, 77, 8), kind="base", cond_idx=[4], alphas_cumprod=abar,
                      lam=[0.0, 2.0], drop_rate=0.0, empty_text=None, seed=1, step=0, slots=[0, 1],
                      device=torch.device("cpu"))
    eps = b.target.view(2, 9, 4, 8, 8)
    app = b.appearance.view(2, 9, 4, 8, 8)
    assert abs(float((eps[0]).mean())) < 0.1                                    # lambda 0: N(0, I)
    assert float((eps[1] - 2.0 * app[1]).abs().mean()) == pytest.approx(0.8, abs=0.1)   # 2 z^c + N(0, I)
    with pytest.raises(ValueError, match="prior lambdas"):
        prepare_batch(latents, torch.randn(2, 77, 8), kind="base", cond_idx=[4], alphas_cumprod=abar,
                      lam=[0.0], drop_rate=0.0, empty_text=None, seed=1, step=0, slots=[0, 1],
                      device=torch.device("cpu"))
    # a cache whose clips carry no amplitude cannot be coupled: named before any step
    run = tiny_run_config(cache, tmp_path / "coupled", max_steps=1)
    run.train.prior_amplitude_coupling = 0.04
    with pytest.raises(ValueError, match="prior_amplitude_coupling"):
        train(run)
