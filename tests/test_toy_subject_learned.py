"""The shipped subject-driven toy model, over HTTP on the real host: its video holds the reference subject.

Learned behaviour, so the weights are the ones this project trained (``models/microcinema/microcinema_toy_custom
.safetensors``, docs/customisation.md); the test skips while they are not in ``models/``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scripts.comfy_host import output_files
from video_probe import probe

pytestmark = pytest.mark.host
WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows" / "api"
SUBJECTS = ("chelsea", "rocket", "grace_hopper")   # held-out subjects (never in training), none the shipped cup


@pytest.mark.xfail(reason="issue 36, not met by the shipped toy model (2026-12-07): first run {'chelsea': (0.548, "
                          "0.569), 'rocket': (0.588, 0.518), 'grace_hopper': (0.529, 0.473)}: the cat's video is nearer "
                          "the rocket's reference; on 108 held-out cases its own reference wins in 75.9 % "
                          "(docs/customisation.md). Strict: a model that passes fails this marker, so remove it then "
                          "(the cat's gap, 0.021, is far above CPU numerics)", strict=True)
def test_the_subject_workflow_video_is_nearer_its_reference_than_another_subjects(mc_models):
    """The shipped subject workflow (20 steps, CFG 1.25, gamma 0.02, seed 0; TSR cut to 2 steps) on three
    held-out subjects cut out as RGBA pictures, each with a held-out scene and motion phrase. Each base-rate frame
    of the saved video is scored by the evaluation's subject measure (``eval/subject_measures.py``: the best
    window's MobileNetV2 similarity to a reference's subject crop) against its own reference and against the next
    subject's.

    Fixed before the first run: the own reference scores higher than the other subject's for every subject,
    averaged over the frames."""
    import torch
    from PIL import Image

    from microcinema_core.eval import mobilenet as M
    from microcinema_core.eval import subject_measures as S
    from microcinema_core.toyworld import captions as cap
    from microcinema_core.toyworld.sources import load_or_gather
    from microcinema_core.toyworld.subjects import cut_out
    from scripts.toy_standins import shipped_custom_file_present

    if not shipped_custom_file_present():
        pytest.skip("the trained subject-driven toy model is not in models/ yet")
    if M.find_weights() is None:
        pytest.skip(f"no ImageNet MobileNetV2 weights: {M.INSTALL_HINT}")
    mobilenet = M.load_mobilenet_v2()
    sources = load_or_gather(mc_models.input_dir.parent / "toy_sources.npz")
    shipped = json.loads((WORKFLOWS / "toy_subject_to_video_api.json").read_text())
    load_image = next(k for k, node in shipped.items() if node["class_type"] == "LoadImage")
    prompt_node = next(k for k, node in shipped.items()
                       if node["class_type"] == "CLIPTextEncode" and node["inputs"]["text"])
    tsr = next(k for k, node in shipped.items() if node["class_type"] == "MicroCinemaTSRInterpolateLatent")
    cutouts = {name: cut_out(sources, name) for name in SUBJECTS}
    references = {name: S.reference_features(c.image, c.alpha, mobilenet) for name, c in cutouts.items()}
    scores = {}
    for i, (name, cutout) in enumerate(cutouts.items()):
        rgba = (torch.cat([cutout.image, cutout.alpha]).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(rgba, "RGBA").save(mc_models.input_dir / f"subject_{name}.png")
        prompt = json.loads(json.dumps(shipped))
        prompt[load_image]["inputs"]["image"] = f"subject_{name}.png"
        where = ("on a green lawn", "in the seat of a car", "beside an old pagoda")[i]
        motion = ("pan_left", "zoom_in", "pan_up")[i]
        prompt[prompt_node]["inputs"]["text"] = cap.caption(motion, "normal", f"{cutout.words} {where}", "heldout",
                                                            np.random.default_rng([36, i]))
        prompt[tsr]["inputs"]["steps"] = 2
        for node in prompt.values():
            if "filename_prefix" in node["inputs"]:
                node["inputs"]["filename_prefix"] += f"_learned_{name}"
        entry = mc_models.client.run(prompt, timeout=600)
        (video,) = [probe(mc_models.output_dir / f["subfolder"] / f["filename"])
                    for f in output_files(entry) if f["filename"].endswith(".mp4")]
        frames = torch.from_numpy(video.frames[::4].astype(np.float32) / 255.0).permute(0, 3, 1, 2)
        windows = S.window_features(frames, mobilenet)
        other = SUBJECTS[(i + 1) % len(SUBJECTS)]
        scores[name] = (float(S.subject_similarity(windows, references[name]).mean()),
                        float(S.subject_similarity(windows, references[other]).mean()))
    assert all(own > another for own, another in scores.values()), scores
