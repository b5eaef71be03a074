"""Bad inputs: each gets a clear error (or warning) that names the input and the fix (docs/bad_inputs.md).

In-process cases run on the 2024 host's ``comfy`` package with tiny random models; cases about the server
(``@pytest.mark.host``) go through the real ComfyUI server, and each is followed by a good prompt that runs.
"""
from __future__ import annotations

import logging
import re

import pytest
import torch

from pack_inprocess import load_pack_single_threaded, text_conditioning, tiny_model

SMALL = dict(channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,))
ANSI = re.compile(r"\x1b\[")


@pytest.fixture(scope="module")
def pack():
    yield from load_pack_single_threaded()


def wrapped(pack, kind="base", dtype=torch.float32):
    return pack.nodes.helpers.comfy_model.wrap_model(tiny_model(kind, **SMALL).to(dtype))


def keyframe_conds(pack, keyframe):
    ps = pack.nodes.helpers.prior_patch
    return ps.with_keyframe(text_conditioning(1), keyframe), ps.with_keyframe(text_conditioning(2), keyframe)


# -- prior_lambda: only -1 means "the checkpoint's" ---------------------------------------------------------
@pytest.mark.parametrize("value", [-0.5, -0.01, -0.9999, float("nan")])
def test_negative_prior_lambda_other_than_minus_one_is_an_error(pack, value):
    np_ = pack.nodes.nodes_noise_prior
    with pytest.raises(ValueError, match="prior_lambda") as err:
        np_.resolve_lambda(value)
    assert "-1" in str(err.value)
    message = np_.MicroCinemaAppearanceNoisePrior.VALIDATE_INPUTS(prior_lambda=value)
    assert isinstance(message, str) and "prior_lambda" in message  # HTTP 400 before anything runs
    assert pack.nodes.nodes_sampler.MicroCinemaSampler.VALIDATE_INPUTS(prior_lambda=value) == message


def test_prior_lambda_minus_one_and_non_negative_values(pack):
    np_ = pack.nodes.nodes_noise_prior
    assert np_.resolve_lambda(-1.0) is None and np_.resolve_lambda(-1) is None
    assert np_.resolve_lambda(0.0) == 0.0 and np_.resolve_lambda(0.05) == 0.05
    assert np_.MicroCinemaAppearanceNoisePrior.VALIDATE_INPUTS(prior_lambda=-1.0) is True
    assert np_.MicroCinemaAppearanceNoisePrior.VALIDATE_INPUTS(prior_lambda=None) is True  # linked input


def test_nan_gamma_is_an_error_naming_gamma(pack):
    model = wrapped(pack)
    raw = torch.randn(1, 4, 8, 8)
    with pytest.raises(ValueError, match="gamma is nan"):
        pack.nodes.nodes_noise_prior.MicroCinemaAppearanceNoisePrior().apply(model, float("nan"), -1.0,
                                                                       keyframe_latent={"samples": raw})


# -- NaN frames into Save Video -----------------------------------------------------------------------------
def test_nan_frames_are_refused_by_save_video_naming_the_upstream_node(pack, tmp_path):
    frames = torch.rand(4, 16, 16, 3)
    frames[2, :3] = float("nan")
    prompt = {"9": {"class_type": "VAEDecode", "inputs": {}},
              "10": {"class_type": "MicroCinemaSaveVideo", "inputs": {"images": ["9", 0]}}}
    with pytest.raises(ValueError) as err:
        pack.nodes.nodes_save_video.MicroCinemaSaveVideo().save(frames, 8.0, "mp4", "never/clip", prompt=prompt,
                                                             unique_id="10")
    message = str(err.value)
    for words in ("images:", "1 of 4 frames", "frame 2", "NaN in 144", "node 9 (VAEDecode", "Nothing was saved",
                  "--fp32-vae", "bf16 or fp32"):
        assert words in message, message
    # the writer itself refuses too (core callers), and leaves no file
    path = tmp_path / "clip.webp"
    with pytest.raises(ValueError, match="NaN"):
        pack.microcinema_core.video.writer.write_video(frames, str(path), 8.0, "webp")
    assert list(tmp_path.iterdir()) == []
    frames[:] = float("inf")
    with pytest.raises(ValueError, match="inf in every one of its 768 values"):
        pack.microcinema_core.video.writer.check_finite_frames(frames)


# -- a full disk or a read-only output folder ----------------------------------------------------------------
def mount_small_tmpfs(folder, size="64k"):
    """A tiny tmpfs at ``folder`` (needs root and mount rights: skipped elsewhere); returns an unmount function."""
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    return lambda: subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_full_disk_and_read_only_folder_fail_with_the_cause_and_leave_no_file(pack, tmp_path):
    import subprocess

    vw = pack.microcinema_core.video.writer
    small = tmp_path / "small"
    unmount = mount_small_tmpfs(small)
    try:
        frames = torch.rand(30, 128, 128, 3)  # noise: far more than 64 KiB of H.264
        for fmt in ("mp4", "webp"):
            with pytest.raises(OSError, match="No space left on device.*Nothing was saved"):
                vw.write_video(frames, str(small / f"clip.{fmt}"), 8.0, fmt)
            assert list(small.iterdir()) == []
        subprocess.run(["mount", "-o", "remount,ro", str(small)], check=True)
        with pytest.raises(PermissionError, match="not writable.*--output-directory"):
            vw.write_video(frames[:2], str(small / "clip.gif"), 8.0, "gif")
    finally:
        unmount()


# -- NaN into the network: say what was seen and the possible causes ----------------------------------------
@pytest.mark.parametrize("which,causes", [
    ("latent", ["sampling diverged", "'latent_image'"]),
    ("appearance", ["keyframe IMAGE itself", "--fp32-vae"]),
    ("context", ["text encoder file does not match", "overflowed in fp16"]),
])
def test_nan_into_the_model_names_the_input_what_was_seen_and_the_causes(which, causes):
    from microcinema_core.errors import MicroCinemaInputError

    model = tiny_model("base", **SMALL)
    x, app = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    ctx = torch.randn(1, 77, model.config.context_dim)
    {"latent": x, "appearance": app, "context": ctx}[which].view(-1)[:5] = float("nan")
    with pytest.raises(MicroCinemaInputError) as err:
        model(x, torch.tensor([500.0]), ctx, app, 2)
    message = str(err.value)
    assert "NaN in 5 of its" in message, message
    for words in causes:
        assert words in message, message
    if which != "appearance":
        assert "--fp32-vae" not in message  # the VAE is not blamed for what it cannot have caused


# -- Cancel inside one huge step ----------------------------------------------------------------------------
def test_interrupt_check_runs_before_every_block_and_stops_the_step():
    model = tiny_model("base", **SMALL)
    calls = []

    class Stop(Exception):
        pass

    def check():
        calls.append(1)
        if len(calls) == 4:
            raise Stop

    model.interrupt_check = check
    x = torch.randn(2, 4, 8, 8)
    with pytest.raises(Stop):
        model(x, torch.tensor([500.0]), torch.randn(1, 77, model.config.context_dim), x, 2)
    assert len(calls) == 4
    calls.clear()
    model.interrupt_check = lambda: calls.append(1)
    model(x, torch.tensor([500.0]), torch.randn(1, 77, model.config.context_dim), x, 2)
    blocks = 2 * len(model.unet.input_blocks) + 2 + len(model.unet.output_blocks)  # AppearNet + main branch
    assert len(calls) == blocks


def test_comfy_cancel_stops_a_forward_pass_of_a_wrapped_model(pack):
    import comfy.model_management as mm

    model = wrapped(pack)
    net = model.model.diffusion_model.net
    assert net.interrupt_check is mm.throw_exception_if_processing_interrupted
    x = torch.randn(2, 4, 8, 8)
    mm.interrupt_current_processing(True)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            net(x, torch.tensor([500.0]), torch.randn(1, 77, net.config.context_dim), x, 2)
    finally:
        mm.interrupt_current_processing(False)
    net(x, torch.tensor([500.0]), torch.randn(1, 77, net.config.context_dim), x, 2)  # runs again


# -- the cost of a run, and slow dtypes ---------------------------------------------------------------------
@pytest.mark.parametrize("kind,injection,side,frames", [("base", "add_encdec_spade", 8, 9), ("tsr", "concat", 12, 5),
                                                        ("base", "add_dec", 16, 3)])
def test_step_flops_match_torch_flop_counter(kind, injection, side, frames):
    from torch.utils.flop_counter import FlopCounterMode

    from microcinema_core.config import MicroCinemaConfig
    from microcinema_core.models.cost import step_flops
    from microcinema_core.models.microcinema import MicroCinemaModel

    config = MicroCinemaConfig.tiny(kind, injection=injection, **SMALL)
    with torch.device("meta"):
        model = MicroCinemaModel(config)
    rows = 2 * frames
    x = torch.empty(rows, 4, side, side, device="meta")
    counter = FlopCounterMode(display=False)
    with torch.enable_grad(), counter:  # grad mode: the counted out-of-place path (see bench/step.py)
        model(x, torch.tensor([500.0, 500.0]), torch.empty(2, 77, config.context_dim, device="meta"), x, frames)
    counted = counter.get_total_flops()
    assert step_flops(model, rows, side, side, frames) == pytest.approx(counted, rel=0.05)


def test_a_run_far_beyond_the_machine_gets_a_warning_and_a_normal_one_does_not():
    from microcinema_core.config import MicroCinemaConfig
    from microcinema_core.models.cost import cost_warning
    from microcinema_core.models.microcinema import MicroCinemaModel

    with torch.device("meta"):
        full = MicroCinemaModel(MicroCinemaConfig.base())
    message = cost_warning(full, 18, 256, 256, 9, torch.float32, "cpu", steps=50)  # 2048x2048 px, CFG
    assert message is not None
    for words in ("2048x2048 px", "TFLOP", "per step", "for 50 steps", "320x320", "GPU", "Cancel"):
        assert words in message, message
    tiny = tiny_model("base", **SMALL)
    assert cost_warning(tiny, 18, 8, 8, 9, torch.float32, "cpu", steps=50) is None


def test_sampler_node_warns_before_a_huge_run(pack, caplog, monkeypatch):
    cost = pack.microcinema_core.models.cost
    monkeypatch.setattr(cost, "WARN_STEP_SECONDS", 0.0)  # any run counts as "far above" here
    model = wrapped(pack)
    raw = torch.randn(1, 4, 8, 8)
    positive, negative = keyframe_conds(pack, raw)
    with caplog.at_level(logging.WARNING):
        pack.nodes.nodes_sampler.warn_before_sampling(model, torch.zeros(9, 4, 8, 8), 1, steps=50, cfg=7.5)
    assert any("MicroCinema: this run is far above" in r.getMessage() and "for 50 steps" in r.getMessage()
               for r in caplog.records), caplog.text


def test_bf16_on_a_cpu_without_native_bf16_warns_with_the_cause(pack, caplog, monkeypatch):
    cost = pack.microcinema_core.models.cost
    monkeypatch.setattr(cost, "fast_bf16", lambda device="cpu": False)  # as on an AVX2-only CPU
    with caplog.at_level(logging.WARNING):
        wrapped(pack, dtype=torch.bfloat16)
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "bfloat16" in text and "no native bf16" in text and "100x slower" in text and "fp32" in text, text
    caplog.clear()
    monkeypatch.setattr(cost, "fast_bf16", lambda device="cpu": True)  # AVX512-BF16 / AMX
    with caplog.at_level(logging.WARNING):
        wrapped(pack, dtype=torch.bfloat16)
        wrapped(pack, dtype=torch.float32)
    assert "no native bf16" not in caplog.text


# -- the keyframe: too small, NaN pixels -----------------------------------------------------------------------
def test_a_1x1_keyframe_names_the_input_and_the_minimum(pack):
    with pytest.raises(ValueError, match=r"'keyframe' is 1x1 px; it must be at least 8x8 px.*320x320"):
        pack.nodes.nodes_keyframe.fit_image(torch.rand(1, 1, 1, 3), 320, 320)


def test_nan_keyframe_pixels_blame_the_node_feeding_it_not_the_vae(pack):
    class FourChannelVAE:  # never asked to encode: the pixels are refused first
        latent_channels = 4

    image = torch.rand(1, 32, 32, 3)
    image[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"'keyframe' has NaN in 1 of its 3072 values: the node feeding 'keyframe'"):
        pack.nodes.nodes_keyframe.encode_keyframe(FourChannelVAE(), image, 64, 64)


# -- more bad inputs (docs/bad_inputs.md) ---------------------------------------------------------------------
def test_too_many_frames_for_the_temporal_attention_names_the_limit():
    from microcinema_core.errors import MicroCinemaInputError

    model = tiny_model("base", **SMALL, temporal_max_frames=8)
    x = torch.randn(9, 4, 8, 8)
    with pytest.raises(MicroCinemaInputError, match="9 frames.*at most 8.*make the video shorter"):
        model(x, torch.tensor([500.0]), torch.randn(1, 77, model.config.context_dim), x, 9)


def test_wrong_text_encoder_width_names_the_text_encoder():
    from microcinema_core.errors import MicroCinemaInputError

    model = tiny_model("base", **SMALL)
    x = torch.randn(2, 4, 8, 8)
    with pytest.raises(MicroCinemaInputError, match=r"text conditioning shape \(1, 77, 2048\).*OpenCLIP-H"):
        model(x, torch.tensor([500.0]), torch.randn(1, 77, 2048), x, 2)


def test_sixteen_channel_latent_names_the_vae():
    from microcinema_core.errors import MicroCinemaInputError

    model = tiny_model("base", **SMALL)
    with pytest.raises(MicroCinemaInputError, match="16 channels.*SD2.1 VAE"):
        model(torch.randn(2, 16, 8, 8), torch.tensor([500.0]), torch.randn(1, 77, model.config.context_dim),
              torch.randn(2, 16, 8, 8), 2)


def test_an_image_latent_as_the_video_latent_needs_two_frames(pack):
    with pytest.raises(ValueError, match="at least 2 frames"):
        pack.nodes.helpers.comfy_model.appearance_for_batch("base", torch.randn(1, 4, 8, 8), (1, 4, 8, 8))


def test_tsr_model_in_the_sampler_and_sd_model_in_the_prior(pack):
    from pack_inprocess import comfy_sd21_model, tiny_config

    positive, negative = keyframe_conds(pack, torch.randn(1, 4, 8, 8))
    with pytest.raises(ValueError, match="'model' is a MicroCinema TSR model"):
        pack.nodes.nodes_sampler.MicroCinemaSampler().sample(wrapped(pack, "tsr"), positive, negative,
                                                       {"samples": torch.zeros(9, 4, 8, 8)}, 0, 1, 7.5, 0.02, -1.0,
                                                       "euler", "normal")
    sd = comfy_sd21_model(tiny_config("base", **SMALL))
    with pytest.raises(ValueError, match="'model' is not a MicroCinema model.*Load MicroCinema Model"):
        pack.nodes.nodes_noise_prior.MicroCinemaAppearanceNoisePrior().apply(sd, 0.02, -1.0, positive)


def test_largest_seed_wraps_in_the_prior_corrected_ancestral_sampler(pack):
    model = wrapped(pack)
    raw = torch.randn(1, 4, 8, 8)
    (patched,) = pack.nodes.nodes_noise_prior.MicroCinemaAppearanceNoisePrior().apply(
        model, 0.02, -1.0, keyframe_latent={"samples": raw})
    sample = pack.nodes.nodes_noise_prior.prior_corrected_ancestral(pack.nodes.nodes_noise_prior.prior_of(patched), 1.0)
    sigmas = torch.tensor([2.0, 1.0, 0.0])
    out = sample(lambda x, s, **kw: x * 0.5, torch.randn(9, 4, 8, 8), sigmas, extra_args={"seed": 2 ** 64 - 1})
    assert torch.isfinite(out).all()


def test_nan_fps_and_a_truncated_checkpoint(pack, tmp_path):
    from microcinema_core.errors import CheckpointError
    from microcinema_core.weights.checkpoint import load_checkpoint

    with pytest.raises(ValueError, match="fps: nan is not a frame rate"):
        pack.microcinema_core.video.writer.validate_frames((2, 8, 8, 3), float("nan"), "gif")
    broken = tmp_path / "microcinema_base.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1")
    with pytest.raises(CheckpointError, match="truncated or not a safetensors file"):
        load_checkpoint(broken)


# -- pickles refused without terminal codes and without advising weights_only=False ------------------------
class NotATensor:  # a pickled object from this test module (what a Lightning .ckpt's callbacks are)
    pass


def write_pickles(folder):
    from argparse import Namespace

    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hparams": Namespace(lr=1)}, folder / "library_object.ckpt")
    torch.save({"state_dict": {"w": torch.zeros(2)}, "callback": NotATensor()}, folder / "script_object.ckpt")
    (folder / "garbage.ckpt").write_bytes(b"not a pickle at all")


@pytest.mark.parametrize("name,words", [
    ("library_object.ckpt", ["argparse.Namespace", "NOT loaded", "from argparse import Namespace",
                             "safe_globals([Namespace])", "weights_only=True", "library_object.safetensors"]),
    ("script_object.ckpt", ["NotATensor", "NOT loaded", ".safetensors"]),
    ("garbage.ckpt", ["could not be read as a PyTorch checkpoint", "NOT loaded", ".safetensors"]),
])
def test_pickle_refusal_says_how_to_convert_and_never_advises_unsafe_loading(tmp_path, name, words):
    from microcinema_core.config import MicroCinemaConfig
    from microcinema_core.errors import CheckpointError
    from microcinema_core.weights.sd21 import inflate_from_sd21

    write_pickles(tmp_path)
    with pytest.raises(CheckpointError) as err:
        inflate_from_sd21(tmp_path / name, MicroCinemaConfig.tiny("base", **SMALL))  # what Inflate's ckpt_name does
    message = str(err.value)
    assert not ANSI.search(message), repr(message)
    assert "weights_only=False" not in message and "`False`" not in message and "add_safe_globals" not in message
    for words_ in words:
        assert words_ in message, message


# == through the real ComfyUI server ==========================================================================
def i2v_prompt(tag: str, size: int = 64, steps: int = 2, frames: int = 9) -> dict:
    """Image -> MicroCinema Sampler -> VAE Decode -> Save Video on the stand-in models (mc_models fixture)."""
    from workflow_assets import wf

    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": wf.KEYFRAME_IMAGE}},
        "2": {"class_type": "CLIPLoader", "inputs": {"clip_name": wf.TEXT_ENCODER, "type": "stable_diffusion"}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": wf.VAE}},
        "4": {"class_type": "MicroCinemaModelLoader", "inputs": {"ckpt_name": wf.BASE_CKPT, "dtype": "auto"}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "a panda", "clip": ["2", 0]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["2", 0]}},
        "7": {"class_type": "MicroCinemaKeyframeConditioning", "inputs": {
            "positive": ["5", 0], "negative": ["6", 0], "vae": ["3", 0], "keyframe": ["1", 0],
            "width": size, "height": size, "frames": frames}},
        "8": {"class_type": "MicroCinemaSampler", "inputs": {
            "model": ["4", 0], "positive": ["7", 0], "negative": ["7", 1], "latent": ["7", 2], "seed": 1,
            "steps": steps, "cfg": 7.5, "gamma": 0.02, "prior_lambda": -1.0, "sampler_name": "euler",
            "scheduler": "normal"}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["3", 0]}},
        "10": {"class_type": "MicroCinemaSaveVideo", "inputs": {
            "images": ["9", 0], "fps": 2.0, "format": "mp4", "filename_prefix": f"bad/{tag}", "quality": 23}},
    }


def next_prompt_runs(host, tag: str) -> None:
    from scripts.comfy_host import output_files

    entry = host.client.run(i2v_prompt(f"after_{tag}"), timeout=240)
    assert len(output_files(entry)) == 1


def write_nan_latent(host, name: str, frames: int = 9, side: int = 8) -> None:
    from safetensors.torch import save_file

    latent = torch.randn(frames, 4, side, side)
    latent[:, :, :2] = float("nan")
    save_file({"latent_tensor": latent.contiguous(), "latent_format_version_0": torch.tensor([])},
              str(host.input_dir / name))


@pytest.mark.host
@pytest.mark.parametrize("value", [-0.5, float("nan")])
def test_server_refuses_a_bad_prior_lambda_with_http_400(mc_models, value):
    from scripts.comfy_host import PromptRejected

    prompt = i2v_prompt("lambda")
    prompt["8"]["inputs"]["prior_lambda"] = value
    with pytest.raises(PromptRejected) as rejected:
        mc_models.client.queue(prompt)
    assert rejected.value.status == 400
    (error,) = rejected.value.body["node_errors"]["8"]["errors"]
    assert error["type"] == "custom_validation_failed" and "prior_lambda" in error["details"], error
    assert "use -1 for the checkpoint's own lambda" in error["details"]
    next_prompt_runs(mc_models, f"lambda{value}")


@pytest.mark.host
def test_server_nan_gamma_and_nan_latent_fail_with_clear_messages(mc_models):
    from scripts.comfy_host import execution_error, output_files

    prompt = i2v_prompt("gamma")
    prompt["8"]["inputs"]["gamma"] = float("nan")  # passes the host's min/max check (NaN compares False)
    prompt_id = mc_models.client.queue(prompt)
    entry = mc_models.client.wait(prompt_id, timeout=120)
    error = execution_error(entry)
    assert error and error["node_id"] == "8" and "gamma is nan" in error["exception_message"], error
    assert not output_files(entry)
    # ComfyUI 0.28.2's /api/jobs writes the NaN of this entry's prompt into its JSON, which the web UI cannot
    # parse ("[Jobs API] Error fetching jobs"): the later browser tests of this session would see that error
    mc_models.client.request("POST", "/history", {"delete": [prompt_id]})

    write_nan_latent(mc_models, "nan_video.latent")
    prompt = i2v_prompt("nanlatent")
    prompt["20"] = {"class_type": "LoadLatent", "inputs": {"latent": "nan_video.latent"}}
    prompt["8"]["inputs"]["latent"] = ["20", 0]
    entry = mc_models.client.wait(mc_models.client.queue(prompt), timeout=120)
    error = execution_error(entry)
    assert error and "the latent reaching the model has NaN" in error["exception_message"], error
    assert "sampling diverged" in error["exception_message"]
    next_prompt_runs(mc_models, "nan")


@pytest.mark.host
def test_server_nan_frames_into_save_video_name_the_upstream_node(mc_models):
    from scripts.comfy_host import execution_error

    write_nan_latent(mc_models, "nan_frames.latent")
    prompt = {
        "1": {"class_type": "LoadLatent", "inputs": {"latent": "nan_frames.latent"}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": __import__("workflow_assets").wf.VAE}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["1", 0], "vae": ["3", 0]}},
        "10": {"class_type": "MicroCinemaSaveVideo", "inputs": {
            "images": ["9", 0], "fps": 2.0, "format": "mp4", "filename_prefix": "bad/nanframes", "quality": 23}},
    }
    before = set(mc_models.output_files())
    entry = mc_models.client.wait(mc_models.client.queue(prompt), timeout=120)
    error = execution_error(entry)
    assert error and error["node_id"] == "10", error
    message = error["exception_message"]
    assert "images:" in message and "NaN" in message and "node 9 (VAEDecode" in message, message
    assert set(mc_models.output_files()) == before
    next_prompt_runs(mc_models, "nanframes")


@pytest.mark.host
def test_server_cancel_stops_inside_one_long_step(mc_models):
    """One step of a large video (the Cancel check sits before every network block): Cancel during the
    FIRST step ends the prompt interrupted with no step completed, and the next prompt runs."""
    import time

    from scripts.comfy_host import execution_error

    prompt = i2v_prompt("cancel_big", size=1024, steps=2, frames=16)  # ~1 TFLOP per step with CFG
    with mc_models.client.listen() as events:
        prompt_id = mc_models.client.queue(prompt, client_id=events.client_id)
        while True:
            event = events.next_event(timeout=240)
            data = event.get("data") or {}
            if event["type"] == "executing" and data.get("node") == "8":
                break
            assert event["type"] not in ("execution_error", "execution_interrupted"), event
        time.sleep(2.0)  # inside the first step (seconds even on a fast CPU, minutes on a busy 2-core one)
        sent = time.monotonic()
        mc_models.client.interrupt()
        rest = events.until_done(prompt_id, timeout=240)
        stopped_after = time.monotonic() - sent
    progress = [e for e in rest if e["type"] == "progress" and (e["data"] or {}).get("node") == "8"]
    assert rest[-1]["type"] == "execution_interrupted", [e["type"] for e in rest]
    assert progress == [], progress  # no step finished: the step itself was stopped
    assert execution_error(mc_models.client.wait(prompt_id, timeout=30))["kind"] == "execution_interrupted"
    print(f"stopped {stopped_after:.1f} s after POST /interrupt")
    next_prompt_runs(mc_models, "cancel_big")


@pytest.mark.host
def test_server_inflate_refuses_a_pickle_with_a_plain_message(mc_models):
    from scripts.comfy_host import execution_error

    write_pickles(mc_models.models_dir / "checkpoints")
    prompt = i2v_prompt("pickle")
    prompt["4"] = {"class_type": "MicroCinemaInflateSD21", "inputs": {
        "kind": "base", "injection": "add_encdec_spade", "ckpt_name": "library_object.ckpt"}}
    entry = mc_models.client.wait(mc_models.client.queue(prompt), timeout=120)
    error = execution_error(entry)
    assert error and error["node_id"] == "4", error
    message = error["exception_message"]
    assert "NOT loaded" in message and "safe_globals" in message and not ANSI.search(message), repr(message)
    assert "weights_only=False" not in message and "`False`" not in message
    next_prompt_runs(mc_models, "pickle")


@pytest.mark.host
def test_server_full_disk_fails_the_save_node_and_leaves_no_file(mc_models):
    from prompts import write_noise_frames
    from scripts.comfy_host import execution_error, output_files

    noise = write_noise_frames(mc_models.input_dir / "noise20.webp", 20, 128, seed=1)  # an mp4 far over 64 KiB
    unmount = mount_small_tmpfs(mc_models.output_dir / "fulldisk")
    try:
        prompt = {
            "load": {"class_type": "LoadImage", "inputs": {"image": noise}},
            "save": {"class_type": "MicroCinemaSaveVideo", "inputs": {
                "images": ["load", 0], "fps": 8.0, "format": "mp4", "filename_prefix": "fulldisk/clip", "quality": 0}},
        }
        entry = mc_models.client.wait(mc_models.client.queue(prompt), timeout=120)
        error = execution_error(entry)
        assert error and error["node_id"] == "save", entry["status"]
        assert "No space left on device" in error["exception_message"], error["exception_message"]
        assert not output_files(entry)
        assert list((mc_models.output_dir / "fulldisk").iterdir()) == []
    finally:
        unmount()
    next_prompt_runs(mc_models, "fulldisk")


@pytest.mark.host
def test_server_a_1x1_keyframe_fails_naming_the_input_and_the_minimum(mc_models):
    from PIL import Image

    from scripts.comfy_host import execution_error

    Image.new("RGB", (1, 1), (200, 30, 30)).save(mc_models.input_dir / "one_pixel.png")
    prompt = i2v_prompt("onepixel")
    prompt["1"]["inputs"]["image"] = "one_pixel.png"
    entry = mc_models.client.wait(mc_models.client.queue(prompt), timeout=120)
    error = execution_error(entry)
    assert error and error["node_id"] == "7", error
    assert "'keyframe' is 1x1 px; it must be at least 8x8 px" in error["exception_message"], error
    next_prompt_runs(mc_models, "onepixel")


def test_tsr_names_a_one_frame_latent_and_a_vae_in_the_latent_input(pack):
    model = pack.nodes.helpers.comfy_model.wrap_model(tiny_model("tsr"))
    node = pack.nodes.nodes_tsr.MicroCinemaTSRInterpolateLatent()
    with pytest.raises(ValueError, match=r"'video_latent' has 1 frame.*at least 2.*not one image's latent"):
        node.interpolate(model, None, {"samples": torch.zeros(1, 4, 8, 8)}, 1, 0, 1, 1.0, 0.02, -1.0, 8)

    class SomeVAE:
        pass

    with pytest.raises(ValueError, match=r"'video_latent' got a SomeVAE, not a LATENT"):   # the deprecated node's
        pack.nodes.nodes_tsr.MicroCinemaTSRInterpolate().interpolate(model, None, 1, 0, 1, 1.0, 0.02, -1.0, 8,
                                                              video_latent=SomeVAE())


def test_main_chain_nodes_take_their_video_and_keyframe_through_required_inputs(pack):
    """The host validates only what required inputs lead to: the nodes the workflows chain have no optional links."""
    for name in ("MicroCinemaNoisePrior", "MicroCinemaNoisePriorFromLatent", "MicroCinemaTSRInterpolateLatent",
                 "MicroCinemaTSRInterpolateImages", "MicroCinemaKeyframeConditioning", "MicroCinemaSubjectConditioning",
                 "MicroCinemaSubjectConditioningMasked"):
        spec = pack.NODE_CLASS_MAPPINGS[name].INPUT_TYPES()
        assert not spec.get("optional"), name
    assert "positive" in pack.NODE_CLASS_MAPPINGS["MicroCinemaNoisePrior"].INPUT_TYPES()["required"]
    for old in ("MicroCinemaAppearanceNoisePrior", "MicroCinemaTSRInterpolate"):   # kept for old workflows
        assert pack.NODE_CLASS_MAPPINGS[old].DEPRECATED is True
        assert pack.NODE_DISPLAY_NAME_MAPPINGS[old].endswith("(deprecated)")


def test_a_prompt_longer_than_the_text_encoder_reads_is_warned_with_its_token_count(pack, caplog):
    tokenizer = pack.nodes.helpers.minilm_clip.MiniLMComfyTokenizer()
    long = " ".join(f"word{i}" for i in range(60)) + " the camera pans left"
    with caplog.at_level(logging.WARNING):
        tokenizer.tokenize_with_weights("a cat, the camera pans left")
        assert not [r for r in caplog.records if "IGNORED" in r.getMessage()]
        tokenizer.tokenize_with_weights(long)
    (record,) = [r for r in caplog.records if "IGNORED" in r.getMessage()]
    assert re.search(r"the prompt is 127 tokens; .* reads the first 77", record.getMessage())
    assert "word37" in record.getMessage()


def test_keyframe_sizes_and_frames_are_checked_before_anything_runs(pack):
    validate = pack.nodes.nodes_keyframe.MicroCinemaKeyframeConditioning.VALIDATE_INPUTS
    assert validate(width=320, height=256) is True
    assert validate(width=None, height=None) is True                               # linked: checked when run
    assert "width 100 is not a multiple of 64 px; use 64 or 128" in validate(width=100, height=320)
    assert "height is 4096" in validate(width=320, height=4096)                    # the widget's max, kept
