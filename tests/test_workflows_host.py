"""The shipped API-format workflows queued over HTTP on the real ComfyUI server, with tiny random models.

See ``workflow_assets.py`` for the test-time stand-ins (tiny MicroCinema checkpoints, random CLIP-L and
TAESD files under the shipped names, LoadImage instead of the SDXL stage, 64x64 px, 2 steps). The toy
workflows run as shipped, on the pack's own files (random-weight stand-ins until the trained toy bundle is in
``models/``; the subject workflow's custom model has its own stand-in until it ships).
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import torch

from host_kind import skip_unless_host_has
from scripts.comfy_host import PromptRejected, execution_error, output_files
from video_probe import probe
from workflow_assets import as_test_prompt
from workflows.definitions import TOY_SIZE

pytestmark = pytest.mark.host
WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows" / "api"


def load_api(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}_api.json").read_text())


def prefixed(prompt: dict, tag: str) -> dict:
    """Unique output names per run (the output folder is shared by the whole session)."""
    for node in prompt.values():
        if "filename_prefix" in node["inputs"]:
            node["inputs"]["filename_prefix"] = f"{node['inputs']['filename_prefix']}_{tag}"
    return prompt


def videos(host, entry) -> list:
    return [probe(host.output_dir / f["subfolder"] / f["filename"]) for f in output_files(entry)]


def noise_prior_node(sampler_inputs: dict) -> dict:
    """An Appearance Noise Prior node on the shipped model/keyframe nodes, with the Sampler node's gamma/lambda."""
    return {"class_type": "MicroCinemaNoisePrior", "inputs": {
        "model": ["4", 0], "gamma": sampler_inputs["gamma"], "prior_lambda": sampler_inputs["prior_lambda"],
        "positive": ["7", 0]}}


def saved_latents(host, prompt: dict, sources) -> list:
    """Run ``prompt`` with its decode/save nodes replaced by a SaveLatent per source node; the latents, in order."""
    from safetensors.torch import load_file

    tag = uuid.uuid4().hex[:6]
    for nid in ("9", "10"):
        del prompt[nid]
    for index, source in enumerate(sources):
        prompt[f"6{index}"] = {"class_type": "SaveLatent",
                               "inputs": {"samples": [source, 0], "filename_prefix": f"cmp/{index}_{tag}"}}
    host.client.run(prompt, timeout=180)
    return [load_file(str(next(host.output_dir.glob(f"cmp/{index}_{tag}*.latent"))))["latent_tensor"]
            for index in range(len(sources))]


def run_image_to_video(host, seed: int, tag: str):
    prompt = prefixed(as_test_prompt(load_api("image_to_video")), tag)
    prompt["8"]["inputs"]["seed"] = seed
    return host.client.run(prompt, timeout=180)


def test_image_to_video_workflow(mc_models):
    (video,) = videos(mc_models, run_image_to_video(mc_models, 42, "i2v"))
    assert (video.count, video.size, video.fps) == (9, (64, 64), pytest.approx(2.0))
    assert video.codec == "h264"


def test_sdxl_keyframe_workflow_validates_except_the_sdxl_file(mc_models):
    """The shipped prompt: the only complaint is the SDXL checkpoint that is not installed.

    The 2024 host validates only what REQUIRED inputs lead to (TSR's video input is optional), so two
    extra outputs make it check the keyframe and base-sampler branches too."""
    prompt = load_api("sdxl_keyframe_to_video")
    prompt["90"] = {"class_type": "PreviewImage", "inputs": {"images": ["16", 0]}}
    prompt["91"] = {"class_type": "SaveLatent", "inputs": {"samples": ["21", 0], "filename_prefix": "never"}}
    with pytest.raises(PromptRejected) as rejected:
        mc_models.client.queue(prompt)
    errors = rejected.value.body["node_errors"]
    assert set(errors) == {"11"}, errors
    (problem,) = errors["11"]["errors"]
    assert problem["type"] == "value_not_in_list" and problem["extra_info"]["input_name"] == "ckpt_name"


def test_sdxl_keyframe_to_tsr_workflow(mc_models):
    prompt = prefixed(as_test_prompt(load_api("sdxl_keyframe_to_video")), "sdxl")
    assert "11" not in prompt and prompt["16"]["class_type"] == "LoadImage"
    (video,) = videos(mc_models, mc_models.client.run(prompt, timeout=240))
    assert (video.count, video.size, video.fps) == (33, (64, 64), pytest.approx(8.0))  # (9-1)*4+1 at 8 fps


def test_toy_image_to_video_workflow(mc_models):
    """The embedded toy default as shipped but with 2 sampling steps (``scripts/demo.sh`` runs the base's 20 and
    the TSR's 2): the keyframe the pack put in the input folder, TOY_SIZE px square, 9 frames -> one TSR pass -> 33
    frames at 8 fps, H.264."""
    shipped_keyframe = WORKFLOWS.parent / "keyframes" / "toy_cat.png"
    assert (mc_models.input_dir / "toy_cat.png").read_bytes() == shipped_keyframe.read_bytes()
    shipped = load_api("toy_image_to_video")
    size = shipped["7"]["inputs"]["width"]
    assert size == shipped["7"]["inputs"]["height"] == TOY_SIZE
    prompt = prefixed(as_test_prompt(shipped, size=size), "toy")
    assert prompt.keys() == shipped.keys() and prompt["1"] == shipped["1"]  # the same graph and keyframe
    (video,) = videos(mc_models, mc_models.client.run(prompt, timeout=600))
    assert (video.count, video.size, video.fps) == (33, (size, size), pytest.approx(8.0))  # (9-1)*4+1
    assert video.codec == "h264"


def mp4s(host, entry) -> list:
    """The probed mp4 files of a history entry (its other outputs, e.g. a saved PNG, left out)."""
    return [probe(host.output_dir / f["subfolder"] / f["filename"]) for f in output_files(entry)
            if f["filename"].endswith(".mp4")]


def subject_prompt(tag: str, steps: int = 2) -> dict:
    """The shipped subject workflow as the tests run it (2 steps, TOY_SIZE as shipped), with the prepared reference
    saved as a PNG (SaveImage "90") beside the video."""
    shipped = load_api("toy_subject_to_video")
    size = shipped["7"]["inputs"]["width"]
    prompt = prefixed(as_test_prompt(shipped, steps=steps, size=size), tag)
    prompt["90"] = {"class_type": "SaveImage", "inputs": {"images": ["7", 3], "filename_prefix": f"reference_{tag}"}}
    return prompt


def test_toy_subject_to_video_workflow(mc_models):
    """The subject-driven toy workflow as shipped but with 2 sampling steps, on the stand-in custom model until the
    trained one is in models/: the cut-out the pack put in the input folder -> Load Image -> InvertMask -> Subject
    Conditioning (TOY_SIZE px, 9 frames) -> the toy back end -> 33 frames at 8 fps, H.264. The reference the node
    prepared (its IMAGE output, saved) is the cup centred on the 0.5 grey: Load Image's mask reached the node as
    1 = subject."""
    import numpy as np
    from PIL import Image

    shipped_subject = WORKFLOWS.parent / "keyframes" / "toy_coffee_cutout.png"
    assert (mc_models.input_dir / "toy_coffee_cutout.png").read_bytes() == shipped_subject.read_bytes()
    shipped = load_api("toy_subject_to_video")
    size = shipped["7"]["inputs"]["width"]
    assert size == shipped["7"]["inputs"]["height"] == TOY_SIZE
    assert shipped["7"]["class_type"] == "MicroCinemaSubjectConditioningMasked"
    assert shipped["8"]["class_type"] == "InvertMask" and shipped["7"]["inputs"]["subject_mask"] == ["8", 0]
    prompt = subject_prompt("subject")
    assert shipped.keys() - prompt.keys() == {"9"} and prompt["1"] == shipped["1"]   # all but the preview
    entry = mc_models.client.run(prompt, timeout=600)
    (video,) = mp4s(mc_models, entry)
    assert (video.count, video.size, video.fps) == (33, (size, size), pytest.approx(8.0))  # (9-1)*4+1
    assert video.codec == "h264"
    (saved,) = [f for f in output_files(entry) if f["filename"].startswith("reference_subject")]
    reference = np.asarray(Image.open(mc_models.output_dir / saved["subfolder"] / saved["filename"])).astype(float)
    assert reference.shape == (size, size, 3)
    grey = round(0.5 * 255)
    assert np.abs(reference[:6] - grey).max() <= 1 and np.abs(reference[:, :6] - grey).max() <= 1   # the margin
    centre = reference[size // 2 - 8:size // 2 + 8, size // 2 - 8:size // 2 + 8]
    assert np.abs(centre - grey).mean() > 20                            # the cup, not the grey
    rows = np.nonzero(np.abs(reference - grey).max(axis=(1, 2)) > 3)[0]
    cols = np.nonzero(np.abs(reference - grey).max(axis=(0, 2)) > 3)[0]
    longer = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1           # the cut-out's longer side: 0.85 of the frame
    assert abs(longer - 0.85 * size) <= 0.05 * size, (rows[[0, -1]], cols[[0, -1]])


def _mask_not_inverted(prompt):
    prompt["7"]["inputs"]["subject_mask"] = ["1", 1]


def _image_to_video_model(prompt):
    prompt["4"]["inputs"]["ckpt_name"] = load_api("toy_image_to_video")["4"]["inputs"]["ckpt_name"]


def _two_subjects(prompt):
    prompt["70"] = {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["1", 0]}}
    prompt["7"]["inputs"]["subject"] = ["70", 0]


def _keyframe_into_the_subject_model(prompt):
    prompt["71"] = {"class_type": "MicroCinemaKeyframeConditioning", "inputs": {
        "positive": ["5", 0], "negative": ["6", 0], "vae": ["3", 0], "keyframe": ["1", 0], "width": TOY_SIZE,
        "height": TOY_SIZE, "frames": 9}}
    for nid, name in (("20", "positive"), ("21", "positive"), ("21", "negative"), ("21", "latent_image")):
        prompt[nid]["inputs"][name] = ["71", prompt[nid]["inputs"][name][1]]


SUBJECT_BAD_EXECUTION = {
    "Load Image's mask not inverted": (_mask_not_inverted, "looks inverted"),
    "the image-to-video base model": (_image_to_video_model, "comes from 'MicroCinema Subject Conditioning'"),
    "a keyframe into the subject-driven model": (_keyframe_into_the_subject_model, "takes a subject reference"),
    "a batch of two subjects": (_two_subjects, "'subject' is a batch of 2 images"),
}


@pytest.mark.parametrize("case", sorted(SUBJECT_BAD_EXECUTION))
def test_subject_workflow_mistakes_give_clear_errors_and_the_next_prompt_runs(mc_models, case):
    """Each mistake fails when its node runs, naming the cause and the fix; the shipped subject workflow runs next."""
    breakage, words = SUBJECT_BAD_EXECUTION[case]
    prompt = subject_prompt(f"bad{len(case)}")
    breakage(prompt)
    entry = mc_models.client.wait(mc_models.client.queue(prompt), timeout=300)
    error = execution_error(entry)
    assert error is not None and words in error.get("exception_message", ""), error
    assert not [f for f in output_files(entry) if f["filename"].endswith(".mp4")]
    after = mc_models.client.run(subject_prompt(f"after{len(case)}"), timeout=600)
    assert [v.count for v in mp4s(mc_models, after)] == [33]


def main_chain_links(prompt: dict) -> list:
    """Every (node id, input name) of ``prompt`` that takes a link."""
    return sorted((nid, name) for nid, node in prompt.items() for name, value in node["inputs"].items()
                  if isinstance(value, list))


SUBJECT_MAIN_CHAIN = main_chain_links(as_test_prompt(load_api("toy_subject_to_video")))


def test_a_link_to_a_missing_node_anywhere_in_the_subject_workflow_is_refused_and_the_next_prompt_runs(mc_models):
    """Issue 38's rule on the subject workflow: every input of the main chain (all the video needs, the masked
    Subject Conditioning's ``subject_mask`` and InvertMask's ``mask`` included) is required, so the 2024 host, which
    validates only what required inputs lead to, refuses a link to a node id that does not exist with HTTP 400;
    through an optional input it accepted the prompt and lost its worker thread for good (KeyError). Every link in
    turn, then a good prompt (a refused prompt never reaches the worker, so one good run after them all shows it
    alive)."""
    from test_host_server import assert_good_prompt_still_works

    accepted = []
    for nid, name in SUBJECT_MAIN_CHAIN:
        prompt = as_test_prompt(load_api("toy_subject_to_video"))
        assert "subject_mask" in prompt["7"]["inputs"] and prompt["8"]["inputs"]["mask"] == ["1", 1]
        prompt[nid]["inputs"][name] = ["99", 0]
        try:
            mc_models.client.queue(prompt)
            accepted.append(f"{nid}.{name}")
        except PromptRejected as rejected:
            assert rejected.status == 400, (nid, name, rejected.status)
            assert "99" in json.dumps(rejected.body), rejected.body
    assert not accepted, f"accepted with a link to a missing node: {accepted}"
    assert_good_prompt_still_works(mc_models, "after_missing_link/clip")


def test_toy_subject_workflow_fits_the_shipped_custom_model():
    """Size and frame count of the subject workflow are the shipped subject-driven model's, and it is one."""
    from microcinema_core.weights.checkpoint import read_checkpoint_config
    from scripts.toy_standins import shipped_custom_file_present, toy_paths

    if not shipped_custom_file_present():
        pytest.skip("the trained subject-driven toy model is not in models/ yet")
    prompt = load_api("toy_subject_to_video")
    config = read_checkpoint_config(toy_paths()["custom"])
    assert prompt["4"]["inputs"]["ckpt_name"] == toy_paths()["custom"].name
    assert (config.kind, config.appearance_input, config.resolution, config.num_frames) == (
        "base", "subject", prompt["7"]["inputs"]["width"], prompt["7"]["inputs"]["frames"])


# -- the TRAINED subject-driven model: its video nearer the reference subject than another subject's ----------------
# (issue 36) to be written once models/microcinema/microcinema_toy_custom.safetensors is trained and shipped; it
# skips while scripts.toy_standins.shipped_custom_file_present() is False.


PAN_DIRECTIONS = {"pan_left": (1.0, 0.0), "pan_right": (-1.0, 0.0), "pan_up": (0.0, 1.0), "pan_down": (0.0, -1.0)}


def test_toy_workflow_moves_in_the_prompts_direction_on_held_out_pictures(mc_models):
    """The shipped toy workflow over HTTP with the shipped files, base sampling as shipped (20 steps, CFG 1.25
    since the 128-px bundle, 2 before; gamma 0.02, seed 0), TSR cut to 2 steps (it does not move the base frames' content): 4 held-out pictures x
    the 4 pans, each in a held-out phrasing. The content's translation measured by optical flow on the 9
    base-rate frames of the saved H.264 video (``flow_motion``: a camera pan left moves content right) is
    projected on the prompt's direction.

    Fixed before the first run: opposite prompts on the same picture and seed must move apart the right way
    in at least 6 of the 8 pairs (chance: 14 %), and the mean projection must be positive. This is far below
    the issue's 80 % class agreement, which the third-run model did not reach (22 %; the 128-px bundle: 84.3 %, docs/toy_results.md).
    First run (third-run base, 2024 host): 7 of 8 pairs apart, mean projection +0.12 px/frame, but only 10 of 16
    videos move the prompt's way: the model adds a common drift (content right/down) that the prompt shifts.
    (That count compared the two projections themselves, which are on opposite directions; fixed with the fourth
    run's base, whose opposite pans both moved their own way and so failed the wrong comparison.)"""
    import numpy as np
    from PIL import Image

    from microcinema_core.eval.flow_motion import video_motion
    from microcinema_core.toyworld import captions as cap
    from microcinema_core.experiments.probe import heldout_cases
    from microcinema_core.toyworld.sources import load_or_gather
    from scripts.toy_standins import shipped_toy_files_present

    if not shipped_toy_files_present():
        pytest.skip("the trained toy bundle is not in models/ yet")
    shipped = load_api("toy_image_to_video")
    size = shipped["7"]["inputs"]["width"]
    sources = load_or_gather(mc_models.input_dir.parent / "toy_sources.npz")
    cases = heldout_cases(sources, 4, seed=2029, size=size)
    projection = {}
    for i, case in enumerate(cases):
        name = f"heldout_{i}.png"
        key = (case.frames[len(case.frames) // 2].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(key).save(mc_models.input_dir / name)
        for j, (motion, direction) in enumerate(PAN_DIRECTIONS.items()):
            prompt = prefixed(json.loads(json.dumps(shipped)), f"dir{i}{j}")
            prompt["1"]["inputs"]["image"] = name
            prompt["5"]["inputs"]["text"] = cap.caption(motion, "normal", sources.subject(case.picture), "heldout",
                                                        np.random.default_rng([8, i, j]))
            prompt["23"]["inputs"]["steps"] = 2
            (video,) = videos(mc_models, mc_models.client.run(prompt, timeout=600))
            motion_seen = video_motion(video.frames[::4].astype(np.float32) / 255.0)
            projection[i, motion] = motion_seen.tx * direction[0] + motion_seen.ty * direction[1]
    # each projection is on its own prompt's direction, and the pair's directions are opposite: the two videos
    # move apart the right way when the sum of their projections is positive
    apart = [projection[i, a] + projection[i, b] > 0 for i in range(len(cases))
             for a, b in (("pan_left", "pan_right"), ("pan_up", "pan_down"))]
    assert sum(apart) >= 6, projection
    assert np.mean(list(projection.values())) > 0, projection


def test_toy_workflow_fits_the_shipped_toy_models():
    """Size and frame count of the toy workflow are what the shipped toy models were trained with."""
    from microcinema_core.weights.checkpoint import read_checkpoint_config
    from scripts.toy_standins import shipped_toy_files_present, toy_paths

    if not shipped_toy_files_present():
        pytest.skip("the trained toy bundle is not in models/ yet")
    prompt = load_api("toy_image_to_video")
    base, tsr = (read_checkpoint_config(toy_paths()[kind]) for kind in ("base", "tsr"))
    assert (base.kind, base.resolution, base.num_frames) == ("base", prompt["7"]["inputs"]["width"],
                                                             prompt["7"]["inputs"]["frames"])
    assert (tsr.kind, tsr.resolution, tsr.num_frames) == ("tsr", base.resolution, 5)


def test_gamma_sweep_workflow(mc_models):
    entry = mc_models.client.run(prefixed(as_test_prompt(load_api("gamma_sweep")), "sweep"), timeout=240)
    got = videos(mc_models, entry)
    assert [(v.count, v.size) for v in got] == [(9, (64, 64))] * 3
    frames = [v.frames.astype(float) for v in got]
    assert all(abs(a - b).mean() > 0.05 for a, b in [(frames[0], frames[1]), (frames[1], frames[2])])


def test_stock_ksampler_equals_microcinema_sampler(mc_models):
    """Noise Prior -> stock KSampler and MicroCinema Sampler, same settings and seed: identical latents."""
    prompt = as_test_prompt(load_api("image_to_video"), steps=3)
    sampler = prompt["8"]["inputs"]
    prompt.update({
        "50": noise_prior_node(sampler),
        "51": {"class_type": "KSampler", "inputs": {
            "model": ["50", 0], "seed": sampler["seed"], "steps": sampler["steps"], "cfg": sampler["cfg"],
            "sampler_name": "euler", "scheduler": "normal", "positive": ["7", 0], "negative": ["7", 1],
            "latent_image": ["7", 2], "denoise": 1.0}},
    })
    ours, stock = saved_latents(mc_models, prompt, ("8", "51"))
    assert ours.shape == (9, 4, 8, 8)
    assert torch.equal(ours, stock)
    assert ours.abs().max() > 0


BAD_HTTP_400 = {
    "missing model file": (("4", "ckpt_name", "no_such_model.safetensors"), "value_not_in_list"),
    "frames < 2": (("7", "frames", 1), "value_smaller_than_min"),
    "gamma out of range": (("8", "gamma", 0.5), "value_bigger_than_max"),
    # the widget's step of 64 is only a hint: the node's VALIDATE_INPUTS refuses the value before anything runs
    "keyframe size not a multiple of 64": (("7", "width", 100), "custom_validation_failed"),
}


@pytest.mark.parametrize("case", sorted(BAD_HTTP_400))
def test_bad_values_get_http_400_and_the_next_prompt_runs(mc_models, case):
    (nid, name, value), kind = BAD_HTTP_400[case]
    prompt = as_test_prompt(load_api("image_to_video"))
    prompt[nid]["inputs"][name] = value
    with pytest.raises(PromptRejected) as rejected:
        mc_models.client.queue(prompt)
    assert rejected.value.status == 400
    errors = rejected.value.body["node_errors"][nid]["errors"]
    # the 2024 host repeats a node's own validation message once per input its VALIDATE_INPUTS names
    assert {e["type"] for e in errors} == {kind}, errors
    run_image_to_video(mc_models, 1000 + len(case), f"after400_{len(case)}")


def _batch_of_keyframes(prompt):
    prompt["70"] = {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["1", 0]}}
    prompt["7"]["inputs"]["keyframe"] = ["70", 0]


def _tsr_file_in_base_loader(prompt):
    prompt["4"]["inputs"]["ckpt_name"] = "microcinema_tsr.safetensors"


def _lora_in_base_loader(prompt):
    prompt["4"]["inputs"]["ckpt_name"] = "not_microcinema_lora.safetensors"


BAD_EXECUTION = {
    "batch of keyframes": (_batch_of_keyframes, "batch of 2 images"),
    "TSR file in the base loader": (_tsr_file_in_base_loader, "load it with 'Load MicroCinema TSR Model'"),
    "LoRA in the base loader": (_lora_in_base_loader, "a LoRA: load it with 'Load LoRA'"),
}


@pytest.mark.parametrize("case", sorted(BAD_EXECUTION))
def test_bad_inputs_give_clear_execution_errors_and_the_next_prompt_runs(mc_models, case):
    from safetensors.torch import save_file

    lora = mc_models.models_dir / "microcinema" / "not_microcinema_lora.safetensors"
    if not lora.exists():
        save_file({"lora_unet_input_blocks_1_1_proj_in.lora_up.weight": torch.zeros(4, 1)}, str(lora))
    breakage, words = BAD_EXECUTION[case]
    prompt = as_test_prompt(load_api("image_to_video"))
    breakage(prompt)
    entry = mc_models.client.wait(mc_models.client.queue(prompt), timeout=120)
    error = execution_error(entry)
    assert error is not None and words in error.get("exception_message", ""), error
    assert not output_files(entry)
    run_image_to_video(mc_models, 2000 + len(case), f"afterexec_{len(case)}")


def test_cancel_mid_sampling_stops_within_a_step_and_leaves_no_file(mc_models):
    prompt = prefixed(as_test_prompt(load_api("image_to_video"), steps=400), "cancelled")
    before = set(mc_models.output_files())
    with mc_models.client.listen() as events:
        prompt_id = mc_models.client.queue(prompt, client_id=events.client_id)
        value_at_interrupt = None
        while value_at_interrupt is None:
            event = events.next_event(timeout=120)
            data = event.get("data") or {}
            if event["type"] == "progress" and data.get("node") == "8" and data["value"] >= 2:
                mc_models.client.interrupt()
                value_at_interrupt = data["value"]
        rest = events.until_done(prompt_id, timeout=60)
    steps_after = [e["data"]["value"] for e in rest if e["type"] == "progress" and e["data"].get("node") == "8"]
    assert len(steps_after) <= 1, steps_after  # the step running when /interrupt arrived, at most
    assert rest[-1]["type"] == "execution_interrupted"
    assert value_at_interrupt < 400
    assert set(mc_models.output_files()) == before  # no partial video
    run_image_to_video(mc_models, 3000, "after_cancel")


def test_noise_output_for_sampler_custom_advanced_equals_microcinema_sampler(mc_models):
    """Current hosts only (NOISE type): Appearance Noise -> SamplerCustomAdvanced == MicroCinema Sampler."""
    skip_unless_host_has(mc_models, "MicroCinemaAppearanceNoise", "SamplerCustomAdvanced",
                         what="NOISE type for SamplerCustomAdvanced")
    prompt = as_test_prompt(load_api("image_to_video"), steps=3)
    s = prompt["8"]["inputs"]
    prompt.update({
        "50": {"class_type": "MicroCinemaAppearanceNoise", "inputs": {
            "model": ["4", 0], "noise_seed": s["seed"], "gamma": s["gamma"], "prior_lambda": s["prior_lambda"],
            "positive": ["7", 0]}},
        "51": {"class_type": "CFGGuider", "inputs": {"model": ["4", 0], "positive": ["7", 0], "negative": ["7", 1],
                                                     "cfg": s["cfg"]}},
        "52": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "53": {"class_type": "BasicScheduler", "inputs": {"model": ["4", 0], "scheduler": "normal",
                                                          "steps": s["steps"], "denoise": 1.0}},
        "54": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["50", 0], "guider": ["51", 0],
                                                                 "sampler": ["52", 0], "sigmas": ["53", 0],
                                                                 "latent_image": ["7", 2]}},
    })
    ours, adv = saved_latents(mc_models, prompt, ("8", "54"))
    assert (ours - adv).abs().max().item() <= 1e-6 * max(1.0, ours.abs().max().item())


def test_sampler_custom_with_the_prior_corrected_ancestral_sampler(mc_models):
    """Noise Prior -> MicroCinema Euler Ancestral (prior-corrected) -> stock SamplerCustom -> mp4, over HTTP."""
    prompt = prefixed(as_test_prompt(load_api("image_to_video")), "ancestral")
    sampler = prompt.pop("8")["inputs"]
    prompt.update({
        "50": noise_prior_node(sampler),
        "52": {"class_type": "MicroCinemaPriorAncestralSampler", "inputs": {"model": ["50", 0], "eta": 1.0}},
        "53": {"class_type": "BasicScheduler", "inputs": {
            "model": ["50", 0], "scheduler": "normal", "steps": sampler["steps"], "denoise": 1.0}},
        "8": {"class_type": "SamplerCustom", "inputs": {
            "model": ["50", 0], "add_noise": True, "noise_seed": 5, "cfg": sampler["cfg"], "positive": ["7", 0],
            "negative": ["7", 1], "sampler": ["52", 0], "sigmas": ["53", 0], "latent_image": ["7", 2]}},
    })
    (video,) = videos(mc_models, mc_models.client.run(prompt, timeout=180))
    assert (video.count, video.size, video.fps) == (9, (64, 64), pytest.approx(2.0))
