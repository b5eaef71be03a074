"""Save Video (MicroCinema): the encoder in-process, then the node on the real ComfyUI server over HTTP."""
from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from microcinema_core.video import writer as vw  # the encoder (core, no ComfyUI)
from scripts.comfy_host import output_files
from prompts import COLOURS, colour_prompt
from video_probe import probe

REPO = Path(__file__).resolve().parent.parent


def ramp_frames(n=6, h=32, w=48):
    """Frames whose brightness rises with the frame index, so order and count are checkable."""
    values = np.linspace(0.1, 0.9, n, dtype=np.float32)
    return np.broadcast_to(values[:, None, None, None], (n, h, w, 3)).copy()


# ---------------------------------------------------------------- encoder, in-process ----------------
@pytest.mark.parametrize("fmt,fps", [("mp4", 8.0), ("mp4", 7.5), ("webp", 8.0), ("gif", 10.0)])
def test_write_video_round_trip(tmp_path, fmt, fps):
    frames = ramp_frames()
    path = tmp_path / f"clip.{fmt}"
    assert vw.write_video(frames, str(path), fps, fmt) == str(path)
    got = probe(path)
    assert got.count == 6 and got.size == (48, 32)
    assert got.fps == pytest.approx(fps, rel=1e-3)
    means = got.frames.reshape(6, -1).mean(axis=1)
    np.testing.assert_allclose(means, frames.reshape(6, -1).mean(axis=1) * 255, atol=6)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    if fmt == "mp4":
        assert got.codec == "h264"


def test_gif_frame_time_is_rounded_to_centiseconds(tmp_path):
    path = tmp_path / "clip.gif"
    vw.write_video(ramp_frames(n=3), str(path), 8.0, "gif")  # 125 ms -> 12 or 13 cs
    assert probe(path).fps == pytest.approx(8.0, rel=0.05)


def test_mp4_odd_size_is_padded_to_even(tmp_path):
    path = tmp_path / "odd.mp4"
    vw.write_video(np.full((3, 7, 9, 3), 0.5, np.float32), str(path), 4.0, "mp4")
    assert probe(path).size == (10, 8)


def test_torch_half_input_and_out_of_range_values(tmp_path):
    torch = pytest.importorskip("torch")
    frames = torch.full((2, 16, 16, 3), 2.0, dtype=torch.float16)
    frames[1] = -3.0
    path = tmp_path / "t.webp"
    vw.write_video(frames, str(path), 2.0, "webp")
    got = probe(path)
    assert got.count == 2
    assert got.frames[0].min() >= 250 and got.frames[1].max() <= 5  # clipped to white and to black
    # NaN frames are refused (tests/test_bad_inputs.py), never written as black


@pytest.mark.parametrize("fmt", vw.FORMATS)
def test_failure_mid_encode_leaves_no_file(tmp_path, fmt):
    """An error (or ComfyUI's Cancel) during the encode removes the temp file; an old file survives."""
    path = tmp_path / f"clip.{fmt}"
    path.write_bytes(b"previous result")

    def cancel_at_third(index):
        if index == 2:
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        vw.write_video(ramp_frames(), str(path), 8.0, fmt, on_frame=cancel_at_third)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert path.read_bytes() == b"previous result"


@pytest.mark.parametrize("shape,fps,fmt,names", [
    ((0, 8, 8, 3), 8.0, "mp4", ("images", "0 frames")),
    ((4, 8, 8, 4), 8.0, "mp4", ("images", "RGBA")),
    ((8, 8, 3), 8.0, "mp4", ("images", "[frames, height, width, 3]")),
    ((4, 8, 8, 3), 0.0, "mp4", ("fps", "positive")),
    ((4, 8, 8, 3), -2.0, "gif", ("fps", "positive")),
    ((4, 8, 8, 3), float("nan"), "gif", ("fps",)),
    ((4, 8, 8, 3), 8.0, "avi", ("format", "mp4, webp, gif")),
])
def test_bad_input_names_the_input_and_the_fix(shape, fps, fmt, names):
    with pytest.raises(ValueError) as err:
        vw.validate_frames(shape, fps, fmt)
    for word in names:
        assert word in str(err.value)


def test_bad_crf_is_rejected_before_writing(tmp_path):
    with pytest.raises(ValueError, match="quality"):
        vw.write_video(ramp_frames(), str(tmp_path / "a.mp4"), 8.0, "mp4", crf=60)
    assert not list(tmp_path.iterdir())


def test_node_returns_ui_dict_and_path(tmp_path, monkeypatch):
    """The node's return contract, with the three host modules it uses replaced by small stand-ins."""
    torch = pytest.importorskip("torch")

    def get_save_image_path(prefix, output_dir, width, height):
        folder = Path(output_dir) / "sub"
        folder.mkdir(exist_ok=True)
        return str(folder), "clip", 1, "sub", prefix

    fake_paths = types.SimpleNamespace(get_output_directory=lambda: str(tmp_path),
                                       get_save_image_path=get_save_image_path)
    ticks = []
    fake_utils = types.SimpleNamespace(ProgressBar=lambda total: types.SimpleNamespace(
        update_absolute=lambda value, total=None, preview=None: ticks.append(value)))
    fake_mm = types.SimpleNamespace(throw_exception_if_processing_interrupted=lambda: None)
    comfy = types.ModuleType("comfy")
    comfy.utils, comfy.model_management = fake_utils, fake_mm
    for name, module in {"folder_paths": fake_paths, "comfy": comfy, "comfy.utils": fake_utils,
                         "comfy.model_management": fake_mm}.items():
        monkeypatch.setitem(sys.modules, name, module)
    # the repo as a package whose ``nodes`` is set up by hand (its __init__ would load every node family)
    for name, folder in (("mc_pack_under_test", REPO), ("mc_pack_under_test.nodes", REPO / "nodes")):
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        monkeypatch.setitem(sys.modules, name, package)
    node_module = importlib.import_module("mc_pack_under_test.nodes.nodes_save_video")

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "clip_00001_.gif").write_bytes(b"older")  # must not be overwritten
    out = node_module.MicroCinemaSaveVideo().save(torch.rand(3, 8, 8, 3), 4.0, "gif", "sub/clip")
    saved = tmp_path / "sub" / "clip_00002_.gif"
    assert out["result"] == (str(saved),)
    assert out["ui"] == {"images": [{"filename": "clip_00002_.gif", "subfolder": "sub", "type": "output"}],
                         "animated": (True,)}
    assert probe(saved).count == 3 and ticks == [1, 2, 3]
    assert (tmp_path / "sub" / "clip_00001_.gif").read_bytes() == b"older"


# ---------------------------------------------------------------- on the real server -----------------
def frame_colours(frames: np.ndarray) -> list[tuple[int, int, int]]:
    """Each frame's mean colour, rounded to 0/255 per channel (the codecs are lossy)."""
    means = frames.reshape(frames.shape[0], -1, 3).mean(axis=1)
    return [tuple(255 if v > 200 else 0 if v < 55 else int(v) for v in mean) for mean in means]


@pytest.mark.host
@pytest.mark.parametrize("fmt", ["mp4", "webp", "gif"])
def test_save_video_over_http(mc_host, fmt):
    fps = 10.0 if fmt == "gif" else 8.0
    entry = mc_host.client.run(colour_prompt(fmt, f"http_{fmt}/clip", fps=fps))
    ui = entry["outputs"]["save"]
    assert ui["animated"] == [True]
    assert ui["images"] == [{"filename": f"clip_00001_.{fmt}", "subfolder": f"http_{fmt}", "type": "output"}]
    path = mc_host.output_dir / f"http_{fmt}" / f"clip_00001_.{fmt}"
    assert mc_host.client.view(**ui["images"][0]) == path.read_bytes()  # what the web UI would fetch
    got = probe(path)
    assert got.count == 5 and got.size == (64, 48)
    assert got.fps == pytest.approx(fps, rel=1e-3)
    assert frame_colours(got.frames) == COLOURS
    assert [p.name for p in (mc_host.output_dir / f"http_{fmt}").iterdir()] == [path.name]


@pytest.mark.host
def test_counter_never_overwrites_and_size_vars(mc_host):
    prompt = colour_prompt("webp", "counter/%width%x%height%", width=40, height=24)
    names = [output_files(mc_host.client.run(prompt))[0]["filename"] for _ in range(2)]
    # the host caches an unchanged prompt; change fps to force a second execution
    prompt["save"]["inputs"]["fps"] = 4.0
    names.append(output_files(mc_host.client.run(prompt))[0]["filename"])
    assert names[0] == "40x24_00001_.webp" and names[2] == "40x24_00002_.webp"
    assert sorted(p.name for p in (mc_host.output_dir / "counter").iterdir()) == [
        "40x24_00001_.webp", "40x24_00002_.webp"]
    assert probe(mc_host.output_dir / "counter" / "40x24_00002_.webp").fps == pytest.approx(4.0)


# ---------------------------------------------------------------- filename_prefix and gif limits -----
@pytest.mark.parametrize("prefix,words", [
    ("clip\x00x", "NUL"),
    ("../escaped/clip", "outside ComfyUI's output folder"),
    ("/etc/clip", "outside ComfyUI's output folder"),
    ("v" * 201, "shorten filename_prefix"),
    ("ok/" + "é" * 101, "202 bytes"),          # bytes, not characters, are what a file system counts
])
def test_a_prefix_no_file_system_takes_is_named_with_the_fix(prefix, words):
    assert words in vw.prefix_problem(prefix)


def test_prefixes_that_name_a_file_pass_and_empty_or_folder_prefixes_get_a_name():
    for prefix in ("MicroCinema/video", "v" * 200, "a/b/c", "%width%x%height%"):
        assert vw.prefix_problem(prefix) is None, prefix
    assert vw.usable_prefix("") == vw.usable_prefix("   ") == "video"
    assert vw.usable_prefix("clips/") == "clips/video" and vw.usable_prefix("x") == "x"


def test_gif_above_100_fps_and_settings_outside_the_widgets_are_refused():
    assert "1/100 s" in vw.settings_problem(120.0, "gif")
    assert vw.settings_problem(100.0, "gif") is None and vw.settings_problem(120.0, "mp4") is None
    assert "format" in vw.settings_problem(8.0, "avi") and "fps" in vw.settings_problem(300.0, "mp4")
    assert vw.settings_problem(None, None) is None                       # linked inputs: checked when run
    with pytest.raises(ValueError, match="1/100 s"):
        vw.validate_frames((3, 8, 8, 3), 120.0, "gif")


def test_a_name_longer_than_the_file_system_takes_says_shorten_the_prefix(tmp_path):
    with pytest.raises(OSError, match="shorten filename_prefix") as error:
        vw.write_video(ramp_frames(n=2), str(tmp_path / ("v" * 250 + "_00001_.gif")), 4.0, "gif")
    assert "free disk space" not in str(error.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.host
def test_empty_and_folder_prefixes_save_a_named_file(mc_host):
    """An empty prefix saves 'video_00001_.mp4' (not a hidden '_00001_.mp4'); 'clips/' saves into that folder."""
    for prefix, folder in (("", ""), ("slashprefix/", "slashprefix")):
        entry = mc_host.client.run(colour_prompt("mp4", prefix))
        (item,) = output_files(entry)
        assert item["subfolder"] == folder and item["filename"].startswith("video_") and item["filename"].endswith(".mp4")
        assert probe(mc_host.output_dir / item["subfolder"] / item["filename"]).count == len(COLOURS)
