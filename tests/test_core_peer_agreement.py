"""Zero temporal/injection layers => our 3D U-Net is ComfyUI's SD2.1 U-Net frame by frame (<= 1e-4)."""
import pytest
import torch

from core_helpers import comfy_sd21_unet, randomize_new_layers_
from microcinema_core.config import INJECTION_MODES, MicroCinemaConfig
from microcinema_core.weights.sd21 import inflate_from_sd21

FRAMES = 5


def _inputs(config, batch=2, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch * FRAMES, 4, size, size, generator=g)
    appearance = torch.randn(batch, 4, size, size, generator=g).repeat_interleave(FRAMES, 0)
    context = torch.randn(batch, 77, config.context_dim, generator=g)
    t = torch.tensor([999.0, 261.0][:batch])
    return x, t, context, appearance


@pytest.mark.parametrize("injection", INJECTION_MODES)
def test_inflated_model_equals_comfy_sd21_per_frame(injection):
    config = MicroCinemaConfig.tiny(injection=injection)
    peer = comfy_sd21_unet(config)
    ours = inflate_from_sd21(peer.state_dict(), config).eval()
    x, t, context, appearance = _inputs(config)
    with torch.no_grad():
        got = ours(x, t, context, appearance, FRAMES)
        want = peer(x, t.repeat_interleave(FRAMES), context=context.repeat_interleave(FRAMES, 0))
    assert got.shape == want.shape == x.shape
    assert (got - want).abs().max().item() <= 1e-4


def test_inflation_accepts_the_single_file_layout_in_fp16():
    config = MicroCinemaConfig.tiny()
    peer = comfy_sd21_unet(config)
    single_file = {f"model.diffusion_model.{k}": v.half() for k, v in peer.state_dict().items()}
    single_file["first_stage_model.decoder.conv_in.weight"] = torch.zeros(1)  # other parts are ignored
    ours = inflate_from_sd21(single_file, config)
    for key, value in peer.state_dict().items():
        assert torch.equal(ours.unet.state_dict()[key], value.half().float())
        if key.startswith("input_blocks."):
            assert torch.equal(ours.appearnet.state_dict()[key], value.half().float())


def test_trained_temporal_layers_change_the_output_and_mix_frames():
    """The check above is not vacuous: non-zero temporal/injection layers make frames depend on each other."""
    config = MicroCinemaConfig.tiny()
    peer = comfy_sd21_unet(config)
    ours = inflate_from_sd21(peer.state_dict(), config).eval()
    randomize_new_layers_(ours)
    x, t, context, appearance = _inputs(config, batch=1)
    with torch.no_grad():
        base = ours(x, t[:1], context, appearance, FRAMES)
        x2 = x.clone()
        x2[0] += 1.0  # change frame 0 only
        moved = ours(x2, t[:1], context, appearance, FRAMES)
        want = peer(x, t[:1].repeat(FRAMES), context=context.repeat(FRAMES, 1, 1))
    assert (base - want).abs().max().item() > 1e-2
    assert (moved[FRAMES - 1] - base[FRAMES - 1]).abs().max().item() > 1e-5  # last frame sees frame 0


@pytest.mark.slow
def test_full_size_inflated_model_equals_comfy_sd21():
    """Full SD2.1-base shapes (865 M-parameter peer, random weights), 2 frames at 40x40 latent."""
    config = MicroCinemaConfig.base()
    peer = comfy_sd21_unet(config)
    ours = inflate_from_sd21(peer.state_dict(), config).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 40, 40, generator=g)
    appearance = torch.randn(1, 4, 40, 40, generator=g).repeat(2, 1, 1, 1)
    context = torch.randn(1, 77, 1024, generator=g)
    t = torch.tensor([500.0])
    with torch.no_grad():
        got = ours(x, t, context, appearance, 2)
        want = peer(x, t.repeat(2), context=context.repeat(2, 1, 1))
    assert (got - want).abs().max().item() <= 1e-4
