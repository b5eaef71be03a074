"""Training data: caption tables, clip sampling, motion filter, skipping broken videos, the latent cache."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training_fixtures import (StandInEncoder, write_caption_csv, write_static_video, write_video)

from microcinema_core.training.caching import LatentCache, build_cache
from microcinema_core.training.captions import read_caption_csv
from microcinema_core.training.clips import (clip_start_times, condition_indices, crop_resize,
                                             source_indices)
from microcinema_core.training.filters import absdiff_steps, motion_verdict
from microcinema_core.training.summary import SkippedVideoWarning
from microcinema_core.training.train_config import DataConfig, load_run_config
from microcinema_core.training.video_io import VideoInfo


def test_webvid_and_simple_csv(tmp_path):
    (tmp_path / "000001_000050").mkdir()
    (tmp_path / "000001_000050" / "1066678.mp4").write_bytes(b"")
    webvid = tmp_path / "results_2M_val.csv"
    webvid.write_text('videoid,contentUrl,duration,page_dir,name\n'
                      '1066678,https://x/1066678.mp4,PT00H00M14S,000001_000050,"Fireworks, at night"\n')
    [entry] = read_caption_csv(webvid)
    assert entry.path == tmp_path / "000001_000050" / "1066678.mp4"
    assert entry.caption == "Fireworks, at night" and entry.key == "1066678"
    simple = write_caption_csv(tmp_path, [("a/b.mp4", "a cat")])
    [entry] = read_caption_csv(simple)
    assert entry.path == tmp_path / "a" / "b.mp4" and entry.caption == "a cat"
    bad = tmp_path / "bad.csv"
    bad.write_text("file,text\nx,y\n")
    with pytest.raises(ValueError, match="videoid"):
        read_caption_csv(bad)


def test_clip_timing_and_condition_frames():
    info = VideoInfo(fps=25.0, num_frames=250, width=320, height=240)  # 10 s
    [start] = clip_start_times(info, 9, 2.0, 1)                        # 4 s clip in the middle
    idx = source_indices(info, start, 9, 2.0)
    assert np.allclose(np.diff(idx), 12.5, atol=1)                     # 0.5 s apart at 25 fps
    assert idx[-1] < 250
    assert clip_start_times(VideoInfo(25.0, 50, 8, 8), 9, 2.0, 1) == []  # 2 s video: too short
    assert len(clip_start_times(info, 5, 30.0, 3)) == 3
    assert condition_indices("base", 9) == [4] and condition_indices("tsr", 5) == [0, 4]


def test_crop_resize_is_centre_square():
    frames = np.zeros((2, 40, 80, 3), np.uint8)
    frames[:, :, 20:60] = 255                                          # the centre 40x40 square is white
    out = crop_resize(frames, 16)
    assert out.shape == (2, 3, 16, 16)
    assert torch.allclose(out, torch.ones_like(out))


def test_motion_measure_thresholds():
    still = torch.full((5, 3, 32, 32), 0.5)
    moving = torch.rand(1, 3, 32, 32).repeat(5, 1, 1, 1)
    for k in range(5):
        moving[k] = torch.roll(moving[k], shifts=k, dims=-1)
    cut = still.clone()
    cut[3:] = 0.0
    cfg = DataConfig()
    assert motion_verdict(absdiff_steps(still), cfg) == "static"
    assert motion_verdict(absdiff_steps(moving), cfg) is None
    assert motion_verdict(absdiff_steps(cut), cfg) == "scene_cut"
    assert motion_verdict(torch.full((4,), 0.3), DataConfig(max_jump=None)) == "jumpy"


def test_broken_video_is_skipped_with_warning_and_counted(tmp_path):
    write_video(tmp_path / "good.mp4", frames=50, fps=10.0)
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    write_video(tmp_path / "short.mp4", frames=8, fps=10.0)           # 0.8 s < 2 s of 5 frames at 2 fps
    write_static_video(tmp_path / "still.mp4")
    csv_path = write_caption_csv(tmp_path, [("good.mp4", "a square"), ("broken.mp4", "nothing"),
                                            ("short.mp4", "too short"), ("gone.mp4", "missing"),
                                            ("still.mp4", "a still")])
    cfg = DataConfig(num_frames=5, fps=[2.0], resolution=32)
    with pytest.warns(SkippedVideoWarning) as caught:
        summary = build_cache(read_caption_csv(csv_path), cfg, StandInEncoder(), tmp_path / "cache",
                              dtype=torch.float32)
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.mp4" in messages and "short.mp4" in messages and "gone.mp4" in messages
    assert summary.videos_seen == 5
    assert summary.skipped == {"unreadable": 1, "too_short": 1, "missing": 1}
    assert summary.filtered == {"static": 1}
    assert summary.clips_kept == 1
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["summary"]["videos_skipped"] == 3
    assert manifest["summary"]["skipped_by_reason"]["unreadable"] == 1
    assert "unreadable" in summary.format()


def test_cache_round_trip(tmp_path):
    for i in range(3):
        write_video(tmp_path / f"v{i}.mp4", frames=40, fps=10.0, seed=i, speed=2 + i)
    csv_path = write_caption_csv(tmp_path, [(f"v{i}.mp4", f"caption {i}") for i in range(3)])
    cfg = DataConfig(kind="tsr", num_frames=5, fps=[8.0, 30.0], resolution=32, shard_size=2,
                     min_source_fps_ratio=0.3, min_motion=None)
    encoder = StandInEncoder()
    summary = build_cache(read_caption_csv(csv_path), cfg, encoder, tmp_path / "cache", dtype=torch.float32)
    assert summary.clips_kept == 6                                     # 3 videos x 2 frame rates
    cache = LatentCache(tmp_path / "cache")
    assert len(cache) == 6 and len(cache.manifest["shards"]) == 3      # shards of 2
    assert cache.kind == "tsr" and cache.condition_indices == [0, 4]
    item = cache[5]
    assert item["latents"].shape == (5, 4, 4, 4) and item["text"].shape == (77, 32)
    assert torch.equal(item["text"], encoder.encode_text([cache.clips[5]["caption"]])[0])
    assert torch.count_nonzero(cache.empty_text()) == 0
    batch = cache.batch([0, 3, 5])
    assert batch["latents"].shape == (3, 5, 4, 4, 4) and batch["text"].shape == (3, 77, 32)
    assert {c["fps"] for c in cache.clips} == {8.0, 30.0}
    with pytest.raises(FileExistsError):
        build_cache([], cfg, encoder, tmp_path / "cache")


def test_shipped_configs_hold_the_paper_settings():
    base = load_run_config("configs/train_base.json")
    tsr = load_run_config("configs/train_tsr.json")
    assert (base.data.num_frames, base.data.fps, base.data.resolution) == (9, [2.0], 320)
    assert (tsr.data.num_frames, tsr.data.fps, tsr.data.kind) == (5, [8.0, 30.0], "tsr")
    assert base.train.text_drop_rate == 0.1 and tsr.train.text_drop_rate == 1.0
    for run in (base, tsr):
        assert run.train.lr == 2e-5 and run.train.spatial_lr_scale == 0.1
        assert run.train.batch_size == 4 and run.train.noise_prior_lambda == 0.03
    assert (base.train.max_steps, tsr.train.max_steps) == (800_000, 40_000)
    over = load_run_config("configs/train_base.json", ["train.batch_size=2", "lr=1e-4", "data.fps=[8]"])
    assert (over.train.batch_size, over.train.lr, over.data.fps) == (2, 1e-4, [8.0])
    with pytest.raises(ValueError, match="unknown"):
        load_run_config(None, ["train.nope=1"])


def test_cli_resolves_config_and_overrides(capsys):
    from microcinema_core.training.cli import main

    assert main(["--config", "configs/train_tsr.json", "--cache", "/x/cache", "--print-config",
                 "train.batch_size=1", "train.parallel=fsdp"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["train"]["batch_size"] == 1 and printed["train"]["parallel"] == "fsdp"
    assert printed["train"]["cache_dir"] == "/x/cache" and printed["data"]["fps"] == [8.0, 30.0]


def test_farneback_measure_when_opencv_is_installed():
    pytest.importorskip("cv2")  # optional measure; setup_env.sh does not install OpenCV
    from microcinema_core.training.filters import farneback_steps

    base = torch.rand(1, 3, 64, 64)
    base = torch.nn.functional.avg_pool2d(base, 5, 1, 2)
    shifted = torch.cat([torch.roll(base, shifts=2 * k, dims=-1) for k in range(4)])
    still = base.repeat(4, 1, 1, 1)
    assert float(farneback_steps(shifted).mean()) > 5 * float(farneback_steps(still).mean()) + 1e-3
