"""The text-and-frame embedding (config.text_frame_embedding): pooling, per-frame codes, growing a checkpoint."""
import torch

from core_helpers import randomize_new_layers_
from microcinema_core.config import MicroCinemaConfig
from microcinema_core.models.microcinema import MicroCinemaModel
from microcinema_core.models.text_frame_embedding import pooled_text
from microcinema_core.training.trainer import add_embedding
from microcinema_core.weights.checkpoint import load_checkpoint, save_checkpoint


def _inputs(config, videos=1, seed=3):
    g = torch.Generator().manual_seed(seed)
    n = config.num_frames
    x = torch.randn(videos * n, 4, 8, 8, generator=g)
    a = torch.randn(videos, 1, 4, 8, 8, generator=g).repeat(1, n, 1, 1, 1).flatten(0, 1)
    c = torch.randn(videos, 77, config.context_dim, generator=g)
    c[:, 12:] = 0.0  # padding rows are zeros, as the MiniLM encoder writes them
    return x, a, c


def test_pooled_text_is_the_mean_of_the_real_tokens_only():
    c = torch.zeros(2, 77, 6)
    c[0, :3] = torch.tensor([1.0, 2.0, 3.0])[:, None]
    c[1, :1] = 4.0
    pooled = pooled_text(c)
    assert torch.allclose(pooled[0], torch.full((6,), 2.0))
    assert torch.allclose(pooled[1], torch.full((6,), 4.0))
    # a prompt split over two 77-token rows (ComfyUI repeats the shorter prompt to match) pools the same
    assert torch.allclose(pooled_text(torch.cat([c, c], dim=1)), pooled)
    assert torch.equal(pooled_text(torch.zeros(1, 77, 6)), torch.zeros(1, 6))


def test_the_embedding_changes_each_frame_by_its_offset_and_the_prompt():
    config = MicroCinemaConfig.tiny(text_frame_embedding=True)
    torch.manual_seed(0)
    model = MicroCinemaModel(config).eval()
    randomize_new_layers_(model)
    x, a, c = _inputs(config)
    embed = model.text_frame_embed
    codes = embed(c, config.num_frames, True, x.shape[0])
    assert codes.shape == (config.num_frames, config.model_channels * 4)
    assert all(not torch.allclose(codes[i], codes[i + 1]) for i in range(config.num_frames - 1))
    other = embed(-c, config.num_frames, True, x.shape[0])
    assert not torch.allclose(codes, other)
    # one context per frame gives the same codes as one per video
    per_frame = embed(c.repeat_interleave(config.num_frames, 0), config.num_frames, False, x.shape[0])
    assert torch.allclose(per_frame, codes, atol=1e-6)
    with torch.no_grad():
        assert not torch.allclose(model(x, torch.tensor([500.0]), c, a, config.num_frames),
                                  model(x, torch.tensor([500.0]), -c, a, config.num_frames))


def test_a_checkpoint_grows_the_embedding_keeping_every_tensor_and_round_trips(tmp_path):
    torch.manual_seed(0)
    old = MicroCinemaModel(MicroCinemaConfig.tiny()).eval()
    randomize_new_layers_(old)
    x, a, c = _inputs(old.config, videos=2)
    grown = add_embedding(old, "text_frame_embedding").eval()
    assert grown.config.text_frame_embedding and grown.text_frame_embed is not None
    for key, value in old.state_dict().items():
        assert torch.equal(grown.state_dict()[key], value), key
    # woken (small, not zero): the new layer passes gradient from the first step
    assert grown.text_frame_embed.mlp[2].weight.abs().max() > 0
    with torch.no_grad():
        torch.nn.init.zeros_(grown.text_frame_embed.mlp[2].weight)
        before = old(x, torch.tensor([300.0, 700.0]), c, a, 9)
        assert torch.allclose(grown(x, torch.tensor([300.0, 700.0]), c, a, 9), before, atol=1e-6)
    randomize_new_layers_(grown)
    path = tmp_path / "grown.safetensors"
    save_checkpoint(grown, path)
    loaded = load_checkpoint(path)
    assert loaded.config.text_frame_embedding
    with torch.no_grad():
        assert torch.equal(loaded(x, torch.tensor([300.0]), c, a, 9), grown(x, torch.tensor([300.0]), c, a, 9))
