"""The prior-share embedding (config.prior_share_embedding): the share it reads, and growing a checkpoint."""
import torch

from core_helpers import randomize_new_layers_
from microcinema_core.config import MicroCinemaConfig
from microcinema_core.diffusion.appearance_input import appearance_sequence
from microcinema_core.models.microcinema import MicroCinemaModel, is_new_layer
from microcinema_core.models.prior_share_embedding import prior_share
from microcinema_core.training.trainer import add_embedding
from microcinema_core.weights.checkpoint import load_checkpoint, save_checkpoint


def _clip(videos=2, n=9, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    keys = torch.randn(videos, 4, size, size, generator=g) + 0.7   # latents are not zero-mean
    return appearance_sequence("base", keys, n), torch.randn(videos * n, 4, size, size, generator=g)


def test_the_share_reads_the_priors_amount_at_t999_through_a_colour_shift_of_the_noise():
    """The start noise ``eps_n + m z^c`` (appendix B.3), plus a per-frame colour shift (offset noise): the share
    is ``m`` within the noise's own scatter (~0.01 on a 9 x 4 x 16 x 16 clip)."""
    appearance, eps = _clip()
    shift = 0.5 * torch.randn(eps.shape[0], 4, 1, 1, generator=torch.Generator().manual_seed(1))
    for amount in (-0.05, 0.05, 0.15):
        share = prior_share(eps + shift + amount * appearance, appearance, 9)
        assert share.shape == (2,)
        assert torch.allclose(share, torch.full((2,), amount), atol=0.03), (amount, share)
    # each video its own: the second video's share does not leak into the first's
    mixed = eps + torch.cat([0.0 * appearance[:9], 0.3 * appearance[9:]])
    first, second = prior_share(mixed, appearance, 9)
    assert abs(float(first)) < 0.03 and abs(float(second) - 0.3) < 0.03


def test_a_new_embedding_starts_silent_and_moves_the_output_with_the_share_once_trained():
    config = MicroCinemaConfig.tiny(prior_share_embedding=True, resolution=128)
    torch.manual_seed(0)
    model = MicroCinemaModel(config).eval()
    assert model.prior_share_embed.mlp[2].weight.abs().max() == 0           # zero-init like every new layer
    assert all(is_new_layer(n) for n, _ in model.prior_share_embed.named_parameters(prefix="prior_share_embed"))
    n = config.num_frames
    appearance, eps = _clip(videos=1, n=n, size=config.resolution // 8)
    context = torch.randn(1, 77, config.context_dim)
    t = torch.tensor([999.0])
    with torch.no_grad():
        low = model(eps - 0.05 * appearance, t, context, appearance, n)
        plain = MicroCinemaModel(config.replace(prior_share_embedding=False)).eval()
        plain.load_state_dict(model.state_dict(), strict=False)
        assert torch.allclose(plain(eps - 0.05 * appearance, t, context, appearance, n), low, atol=1e-6)
        randomize_new_layers_(model)
        low = model(eps - 0.05 * appearance, t, context, appearance, n)
        shifted = model(eps + 0.15 * appearance, t, context, appearance, n)
        without = MicroCinemaModel(config.replace(prior_share_embedding=False)).eval()
        without.load_state_dict(model.state_dict(), strict=False)
        # the embedding adds a reaction to the amount on top of the input's own change
        gap_with = (shifted - low).abs().mean()
        gap_without = (without(eps + 0.15 * appearance, t, context, appearance, n)
                       - without(eps - 0.05 * appearance, t, context, appearance, n)).abs().mean()
        assert not torch.isclose(gap_with, gap_without)


def test_a_checkpoint_grows_the_embedding_keeping_every_tensor_and_round_trips(tmp_path):
    torch.manual_seed(0)
    old = MicroCinemaModel(MicroCinemaConfig.tiny(text_frame_embedding=True)).eval()
    randomize_new_layers_(old)
    grown = add_embedding(old, "prior_share_embedding").eval()
    assert grown.config.prior_share_embedding and grown.config.text_frame_embedding
    for key, value in old.state_dict().items():
        assert torch.equal(grown.state_dict()[key], value), key
    assert grown.prior_share_embed.mlp[2].weight.abs().max() > 0          # woken: gradient from the first step
    path = tmp_path / "grown.safetensors"
    save_checkpoint(grown, path)
    loaded = load_checkpoint(path)
    assert loaded.config.prior_share_embedding
    appearance, eps = _clip(videos=1, size=8)
    context = torch.randn(1, 77, old.config.context_dim)
    with torch.no_grad():
        assert torch.equal(loaded(eps, torch.tensor([700.0]), context, appearance, 9),
                           grown(eps, torch.tensor([700.0]), context, appearance, 9))
