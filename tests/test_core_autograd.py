"""Training mode: the in-place fast paths are autograd-safe, checkpointing changes nothing."""
import torch

from core_helpers import randomize_new_layers_
from microcinema_core.config import MicroCinemaConfig
from microcinema_core.models.microcinema import MicroCinemaModel

N = 5


def _setup(seed=0):
    torch.manual_seed(seed)
    model = MicroCinemaModel(MicroCinemaConfig.tiny("tsr"))
    randomize_new_layers_(model)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2 * N, 4, 8, 8, generator=g)
    a = torch.randn(2 * N, 4, 8, 8, generator=g)
    c = torch.randn(2, 77, 64, generator=g)
    return model, (x, torch.tensor([3.0, 700.0]), c, a, N)


def _grads(model, args):
    model.zero_grad()
    out = model(*args)
    out.pow(2).mean().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_grad_mode_output_equals_inference_and_every_layer_gets_a_gradient():
    model, args = _setup()
    with torch.no_grad():
        inference = model(*args)
    out, grads = _grads(model, args)
    assert torch.allclose(out, inference, atol=1e-5)  # inference sums residuals in another order (addmm_)
    params = dict(model.named_parameters())
    assert set(grads) == set(params)
    for name in ("unet.input_blocks.1.0.temporal_conv_in.conv.weight",
                 "unet.input_blocks.1.1.temporal_attention.to_out.weight",
                 "unet.output_blocks.3.0.spade.conv.weight", "injection.decoder.0.weight"):
        assert grads[name].abs().sum() > 0, name


def test_zero_initialised_layers_still_receive_gradients():
    """Fresh from inflation the new layers are zero, yet their gradient is not: training can start."""
    torch.manual_seed(0)
    model = MicroCinemaModel(MicroCinemaConfig.tiny())
    g = torch.Generator().manual_seed(1)
    x = torch.randn(9, 4, 8, 8, generator=g)
    args = (x, torch.tensor([500.0]), torch.randn(1, 77, 64, generator=g), torch.randn(9, 4, 8, 8, generator=g), 9)
    _, grads = _grads(model, args)
    assert grads["unet.input_blocks.4.0.temporal_conv_out.conv.weight"].abs().sum() > 0
    assert grads["unet.middle_block.0.spade.conv.weight"].abs().sum() > 0
    assert grads["injection.encoder.5.weight"].abs().sum() > 0


def test_gradient_checkpointing_gives_the_same_gradients():
    model, args = _setup()
    out_plain, plain = _grads(model, args)
    model.enable_gradient_checkpointing(True)
    out_ckpt, ckpt = _grads(model, args)
    assert torch.allclose(out_plain, out_ckpt, atol=1e-6)
    for name, grad in plain.items():
        assert torch.allclose(grad, ckpt[name], atol=1e-5, rtol=1e-4), name
