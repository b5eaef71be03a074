"""The ComfyUI glue in-process, on the 2024 host's ``comfy`` package, with tiny random-weight models.

* The stock path (Appearance Noise Prior -> ``comfy.sample``, i.e. KSampler) equals the pure-core pipeline
  (``microcinema_core.diffusion.pipeline.generate``) for the same seed: keyframe, appearance input, CFG
  stacking, timesteps and the prior start are all wired right.
* 'Inflate SD2.1 to MicroCinema' reproduces ComfyUI's own SD2.x model frame by frame.
* TSR: frame counts, endpoints kept, batch-size invariance, the empty prompt only. Errors users can act on.
"""
from __future__ import annotations

import pytest
import torch

from pack_inprocess import CONTEXT_DIM, comfy_sd21_model, load_pack_single_threaded, text_conditioning, tiny_config, tiny_model

SMALL = dict(channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,))


@pytest.fixture(scope="module")
def pack():
    yield from load_pack_single_threaded()


def keyframe_conds(pack, keyframe):
    ps = pack.nodes.helpers.prior_patch
    return ps.with_keyframe(text_conditioning(1), keyframe), ps.with_keyframe(text_conditioning(2), keyframe)


@pytest.mark.parametrize("gamma,variant", [(0.02, {}), (-0.01, {}),
                                           (0.02, dict(prediction="v", zero_terminal_snr=True, text_frame_embedding=True))])
def test_stock_comfy_sampling_equals_the_core_pipeline(pack, gamma, variant):
    """Also for the toy default's additions (v-prediction, zero terminal SNR, text-and-frame embedding):
    ComfyUI then samples on the model's own sigma table (from 4519, not SD's 14.6)."""
    from microcinema_core.diffusion.pipeline import generate
    from microcinema_core.diffusion.schedule import DiscreteSchedule

    net = tiny_model("base", **SMALL, **variant)
    model = pack.nodes.helpers.comfy_model.wrap_model(net)
    sampling = model.model.model_sampling
    assert torch.allclose(sampling.sigmas, DiscreteSchedule.from_config(net.config).sigmas, rtol=1e-4)
    assert (float(sampling.sigma_max) > 4000) == bool(variant)
    raw = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    positive, negative = keyframe_conds(pack, raw)
    (patched,) = pack.nodes.nodes_noise_prior.MicroCinemaAppearanceNoisePrior().apply(model, gamma, -1.0, positive)
    got = pack.nodes.helpers.ksampler.ksample(patched, 7, 3, 7.5, "euler", "normal", positive, negative,
                                      {"samples": torch.zeros(9, 4, 8, 8)})["samples"]
    scale = 0.18215
    with torch.no_grad():
        want = generate(net, raw * scale, positive[0][0], negative[0][0], num_frames=9, steps=3, cfg=7.5,
                        gamma=gamma, seed=7) / scale
    assert got.shape == (9, 4, 8, 8)
    # from sigma 4519 the first step's x - sigma * eps cancels ~4 digits of fp32 (ComfyUI and the core round
    # differently); a wrong wiring (SD's table, another timestep) differs by O(1)
    tolerance = 2e-3 if variant else 1e-4
    assert (got - want).abs().max().item() <= tolerance * max(1.0, want.abs().max().item())


def test_prior_moves_the_start_by_mu(pack):
    """The patched noise_scaling is the host's scaling of (noise + (lambda+gamma) z^c), nothing else."""
    model = pack.nodes.helpers.comfy_model.wrap_model(tiny_model("base", **SMALL))
    raw = torch.randn(1, 4, 8, 8)
    (patched,) = pack.nodes.nodes_noise_prior.MicroCinemaAppearanceNoisePrior().apply(
        model, 0.02, -1.0, keyframe_latent={"samples": raw})
    sampling = patched.object_patches["model_sampling"]
    noise = torch.randn(9, 4, 8, 8)
    sigma = torch.tensor(14.6)
    got = sampling.noise_scaling(sigma, noise, torch.zeros_like(noise), True)
    mu = (0.03 + 0.02) * 0.18215 * raw.expand(9, -1, -1, -1)
    assert torch.allclose(got, (noise + mu) * (1 + sigma ** 2) ** 0.5, atol=1e-5)
    original = model.model.model_sampling  # the input MODEL is untouched
    assert torch.equal(original.noise_scaling(sigma, noise, torch.zeros_like(noise), True),
                       noise * (1 + sigma ** 2) ** 0.5)
    # a second prior replaces the first instead of stacking on it
    (again,) = pack.nodes.nodes_noise_prior.MicroCinemaAppearanceNoisePrior().apply(
        patched, 0.02, -1.0, keyframe_latent={"samples": raw})
    assert torch.allclose(again.object_patches["model_sampling"].noise_scaling(sigma, noise, torch.zeros_like(noise),
                                                                               True), got, atol=1e-6)


def test_sampler_node_equals_prior_plus_stock_sampling(pack):
    model = pack.nodes.helpers.comfy_model.wrap_model(tiny_model("base", **SMALL))
    positive, negative = keyframe_conds(pack, torch.randn(1, 4, 8, 8))
    latent = {"samples": torch.zeros(5, 4, 8, 8)}
    (ours,) = pack.nodes.nodes_sampler.MicroCinemaSampler().sample(model, positive, negative, latent, 3, 2, 7.5, 0.02,
                                                             -1.0, "euler", "normal")
    (patched,) = pack.nodes.nodes_noise_prior.MicroCinemaAppearanceNoisePrior().apply(model, 0.02, -1.0, positive)
    stock = pack.nodes.helpers.ksampler.ksample(patched, 3, 2, 7.5, "euler", "normal", positive, negative, latent)
    assert torch.equal(ours["samples"], stock["samples"])


def test_inflated_sd21_reproduces_comfy_sd21_frame_by_frame(pack):
    config = tiny_config("base", **SMALL)
    sd21 = comfy_sd21_model(config, seed=3)
    (inflated,) = pack.nodes.nodes_inflate.MicroCinemaInflateSD21().inflate("base", "add_encdec_spade", sd21_model=sd21)
    assert pack.nodes.helpers.comfy_model.microcinema_config_of(inflated).model_channels == config.model_channels
    ksample = pack.nodes.helpers.ksampler.ksample
    pos, neg = text_conditioning(1), text_conditioning(2)
    latent = {"samples": torch.zeros(4, 4, 8, 8)}
    want = ksample(sd21, 11, 3, 5.0, "euler", "normal", pos, neg, latent)["samples"]
    kpos, kneg = keyframe_conds(pack, torch.randn(1, 4, 8, 8))
    kpos[0][0], kneg[0][0] = pos[0][0], neg[0][0]
    got = ksample(inflated, 11, 3, 5.0, "euler", "normal", kpos, kneg, latent)["samples"]
    assert (got - want).abs().max().item() <= 1e-4 * max(1.0, want.abs().max().item())


class EmptyPromptClip:
    """A CLIP stand-in with the two calls the TSR node makes (``tokenize``, ``encode_from_tokens``); it records
    the texts it was asked to encode. The real CLIP path is in test_toy_nodes.py."""

    def __init__(self, dim: int = CONTEXT_DIM):
        self.dim, self.texts = dim, []

    def tokenize(self, text):
        self.texts.append(text)
        return {"text": text}

    def encode_from_tokens(self, tokens, return_pooled=False):
        [[cond, options]] = text_conditioning(0, dim=self.dim)
        return (cond, options["pooled_output"]) if return_pooled else cond


def test_tsr_frame_count_endpoints_and_batch_invariance(pack):
    model = pack.nodes.helpers.comfy_model.wrap_model(tiny_model("tsr", **SMALL))
    frames = torch.randn(3, 4, 8, 8)
    node = pack.nodes.nodes_tsr.MicroCinemaTSRInterpolate()
    clip = EmptyPromptClip()
    (one,) = node.interpolate(model, clip, 1, 0, 2, 1.0, 0.02, -1.0, 8, video_latent={"samples": frames})
    (split,) = node.interpolate(model, clip, 1, 0, 2, 1.0, 0.02, -1.0, 1, video_latent={"samples": frames})
    assert set(clip.texts) == {""}  # the TSR only ever encodes the empty prompt
    out = one["samples"]
    assert out.shape == (9, 4, 8, 8)  # (3-1)*4+1
    assert torch.equal(out[0], frames[0]) and torch.equal(out[4], frames[1]) and torch.equal(out[8], frames[2])
    # batch size changes only float rounding (random weights amplify it: ~7e-7 of the output's range measured)
    assert (out - split["samples"]).abs().max().item() <= 1e-5 * max(1.0, out.abs().max().item())
    (two,) = node.interpolate(model, clip, 2, 0, 1, 1.0, 0.02, -1.0, 64, video_latent={"samples": frames[:2]})
    assert two["samples"].shape[0] == 17  # 2 -> 5 -> 17


def test_an_untrained_residual_tsr_model_gives_the_interpolation_through_the_stock_sampler(pack):
    """prediction "x0_residual" (the toy TSR) seen by ComfyUI as an eps model: with its head at zero, every step's
    denoised clip is the first/last interpolation, so the node returns the linear blend of the given frames."""
    net = tiny_model("tsr", **SMALL, prediction="x0_residual")
    with torch.no_grad():
        net.unet.out[2].weight.zero_()
        net.unet.out[2].bias.zero_()
    model = pack.nodes.helpers.comfy_model.wrap_model(net)
    frames = torch.randn(2, 4, 8, 8)
    (out,) = pack.nodes.nodes_tsr.MicroCinemaTSRInterpolate().interpolate(model, EmptyPromptClip(), 1, 0, 3, 1.0, 0.02,
                                                                     -1.0, 8, video_latent={"samples": frames})
    weights = torch.linspace(0, 1, 5).view(5, 1, 1, 1)
    blend = (1 - weights) * frames[0] + weights * frames[1]
    assert torch.allclose(out["samples"], blend, atol=1e-4), (out["samples"] - blend).abs().max()


def test_kind_and_model_type_errors(pack):
    errors = pytest.importorskip("microcinema_core.errors")
    base = pack.nodes.helpers.comfy_model.wrap_model(tiny_model("base", **SMALL))
    node = pack.nodes.nodes_tsr.MicroCinemaTSRInterpolate()
    with pytest.raises(ValueError, match="BASE model; this input needs a TSR"):
        node.interpolate(base, EmptyPromptClip(), 1, 0, 1, 1.0, 0.02, -1.0, 8,
                         video_latent={"samples": torch.zeros(2, 4, 8, 8)})
    tsr = pack.nodes.helpers.comfy_model.wrap_model(tiny_model("tsr", **SMALL))
    with pytest.raises(ValueError, match="'clip' makes 1024-d text vectors but the TSR model takes 768-d"):
        node.interpolate(tsr, EmptyPromptClip(dim=1024), 1, 0, 1, 1.0, 0.02, -1.0, 8,
                         video_latent={"samples": torch.zeros(2, 4, 8, 8)})
    sd21 = comfy_sd21_model(tiny_config("base", **SMALL))
    with pytest.raises(ValueError, match="not a MicroCinema model"):
        pack.nodes.nodes_sampler.MicroCinemaSampler().sample(sd21, *keyframe_conds(pack, torch.zeros(1, 4, 8, 8)),
                                                       {"samples": torch.zeros(2, 4, 8, 8)}, 0, 1, 1.0, 0.0,
                                                       -1.0, "euler", "normal")
    assert errors.MicroCinemaInputError.__mro__[1] is ValueError


def test_keyframe_without_conditioning_and_size_mismatch_are_clear(pack):
    model = pack.nodes.helpers.comfy_model.wrap_model(tiny_model("base", **SMALL))
    ksample = pack.nodes.helpers.ksampler.ksample
    with pytest.raises(ValueError, match="got no keyframe"):
        ksample(model, 0, 1, 2.0, "euler", "normal", text_conditioning(1), text_conditioning(2),
                {"samples": torch.zeros(2, 4, 8, 8)})
    positive, negative = keyframe_conds(pack, torch.zeros(1, 4, 16, 16))
    with pytest.raises(ValueError, match="keyframe latent is 128x128 px but the video latent is 64x64"):
        ksample(model, 0, 1, 2.0, "euler", "normal", positive, negative, {"samples": torch.zeros(2, 4, 8, 8)})
