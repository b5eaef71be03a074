"""The prior-corrected Euler ancestral SAMPLER inside ComfyUI's SamplerCustom path (2024 host, in-process).

It must be the core's ``sample_euler_ancestral`` with ``prior_mean = mu`` of the Noise Prior node: same
start, same CFG denoiser, same fresh noise for the seed. (That the correction itself is right is proved
on Gaussian data in ``test_noise_prior_gaussian.py``.)
"""
from __future__ import annotations

import pytest
import torch

from pack_inprocess import load_pack_single_threaded, text_conditioning, tiny_model

SMALL = dict(channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,))
SCALE = 0.18215  # SD2.1's latent scale (ComfyUI samples in process_latent_in space)


@pytest.fixture(scope="module")
def pack():
    yield from load_pack_single_threaded()


def _prior_model(pack, raw, gamma=0.02):
    net = tiny_model("base", **SMALL)
    model = pack.nodes.helpers.comfy_model.wrap_model(net)
    ps = pack.nodes.helpers.prior_patch
    positive = ps.with_keyframe(text_conditioning(1), raw)
    negative = ps.with_keyframe(text_conditioning(2), raw)
    (patched,) = pack.nodes.nodes_noise_prior.MicroCinemaAppearanceNoisePrior().apply(model, gamma, -1.0, positive)
    return net, patched, positive, negative


def test_sampler_custom_with_the_corrected_sampler_equals_the_core(pack):
    import comfy.sample
    import comfy.samplers

    from microcinema_core.diffusion.appearance_input import appearance_sequence
    from microcinema_core.diffusion.noise_prior import prior_mean, start_latent
    from microcinema_core.diffusion.pipeline import GuidedDenoiser
    from microcinema_core.diffusion.sampler import sample_euler_ancestral
    from microcinema_core.diffusion.schedule import DiscreteSchedule

    raw = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    net, patched, positive, negative = _prior_model(pack, raw)
    (sampler,) = pack.nodes.nodes_noise_prior.MicroCinemaPriorAncestralSampler().get_sampler(patched, 1.0)
    schedule = DiscreteSchedule()
    sigmas = schedule.sigmas_for(3, "normal")
    latent = torch.zeros(9, 4, 8, 8)
    seed = 11
    noise = comfy.sample.prepare_noise(latent, seed)
    got = comfy.sample.sample_custom(patched, noise, 7.5, sampler, sigmas, positive, negative, latent,
                                     noise_mask=None, callback=None, disable_pbar=True, seed=seed)
    mu = prior_mean(appearance_sequence("base", raw * SCALE, 9), 0.03, 0.02)
    denoiser = GuidedDenoiser(net, schedule, positive[0][0], negative[0][0],
                              appearance_sequence("base", raw * SCALE, 9), 9, 7.5)
    with torch.no_grad():
        want = sample_euler_ancestral(denoiser, start_latent(noise, mu, float(sigmas[0])), sigmas,
                                      generator=torch.Generator().manual_seed(seed + 1), prior_mean=mu) / SCALE
    assert got.shape == (9, 4, 8, 8)
    assert (got - want).abs().max().item() <= 1e-4 * max(1.0, want.abs().max().item())
    # and it is not the uncorrected stock sampler
    stock = comfy.sample.sample_custom(patched, noise, 7.5, comfy.samplers.sampler_object("euler_ancestral"),
                                       sigmas, positive, negative, latent, noise_mask=None, callback=None,
                                       disable_pbar=True, seed=seed)
    assert (stock - got).abs().max().item() > 1e-3


def test_model_without_the_prior_is_refused(pack):
    model = pack.nodes.helpers.comfy_model.wrap_model(tiny_model("base", **SMALL))
    with pytest.raises(ValueError, match="Appearance Noise Prior"):
        pack.nodes.nodes_noise_prior.MicroCinemaPriorAncestralSampler().get_sampler(model, 1.0)
