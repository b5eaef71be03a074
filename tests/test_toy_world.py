"""The toy world, its text encoder and VAE layout, and the flow-based motion measure (no ComfyUI)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from microcinema_core.eval.flow_motion import classify, video_motion
from microcinema_core.toyworld import captions as cap
from microcinema_core.toyworld.motions import CAMERA_MOTIONS, OBJECT_MOTIONS
from microcinema_core.toyworld.sources import HELD_OUT_PICTURES, load_or_gather
from microcinema_core.toyworld.world import ToyWorld


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return load_or_gather(tmp_path_factory.mktemp("toy") / "sources.npz")


def test_sources_are_real_pictures_and_videos_with_a_held_out_split(sources):
    train, held = sources.picture_names("train"), sources.picture_names("heldout")
    assert set(held) == set(HELD_OUT_PICTURES) and not set(train) & set(held)
    assert len(train) >= 10
    for name in train + held:
        image = sources.pictures[name]
        assert image.dtype == np.uint8 and image.shape[2] == 3 and min(image.shape[:2]) == 256
        assert image.std() > 10, f"{name} is flat"
    assert sources.video_names("heldout") == ["carphone"]
    for name, video in sources.videos.items():
        assert video.shape[0] >= 100 and video.shape[-1] == 3 and sources.video_fps[name] > 20


def test_clips_are_deterministic_by_seed_and_index(sources):
    a, b = ToyWorld(sources, seed=3).clip(11), ToyWorld(sources, seed=3).clip(11)
    assert torch.equal(a.frames, b.frames) and a.caption == b.caption
    c = ToyWorld(sources, seed=4).clip(11)
    assert not torch.equal(a.frames, c.frames) or a.caption != c.caption
    assert a.frames.shape == (9, 3, 128, 128) and 0 <= a.frames.min() and a.frames.max() <= 1
    tsr = ToyWorld(sources, kind="tsr", seed=3).clip(0)
    assert tsr.frames.shape == (5, 3, 128, 128)


def test_training_never_sees_held_out_pictures_or_phrasings(sources):
    world = ToyWorld(sources, "train", seed=0)
    held_phrases = {p.split("{")[0].strip() for m in cap.PARAPHRASES.values() for p in m[1]}
    for i in range(300):
        clip = world.clip(i)
        assert clip.picture not in HELD_OUT_PICTURES and clip.picture != "carphone"
    held = ToyWorld(sources, "heldout", seed=0)
    for i in range(40):
        clip = held.clip(i, motion=CAMERA_MOTIONS[i % 9])
        assert clip.picture in HELD_OUT_PICTURES
    # every held-out paraphrase differs from every training paraphrase
    for motion, (train_list, held_list) in cap.PARAPHRASES.items():
        assert not set(train_list) & set(held_list), motion
    assert held_phrases


def test_video_stills_film_frames_of_the_splits_videos_and_leave_the_default_world_unchanged(sources):
    plain, stills = ToyWorld(sources, "train", seed=2, size=64), ToyWorld(sources, "train", seed=2, size=64,
                                                                           video_stills=0.6)
    drawn = [stills.clip(i) for i in range(60)]
    backdrops = [c for c in drawn if "#" in c.picture]
    assert 20 <= len(backdrops) <= 50, len(backdrops)     # ~0.6 of the camera and object clips (90 % of all)
    for clip in backdrops:
        video, frame = clip.picture.split("#")
        assert video in sources.video_names("train") and 0 <= int(frame) < len(sources.videos[video])
        assert clip.motion != "real" and clip.frames.shape == (9, 3, 64, 64)
    # captions name the video's subject where they name the backdrop (some framings name none)
    assert sum(stills.sources.subject(c.picture) in c.caption for c in backdrops) >= len(backdrops) // 3
    # a camera clip over a still moves as its caption says (the flow measure reads it)
    pan = stills.clip(1000, motion="pan_left", picture="bunny#60")
    assert classify(video_motion(pan.frames.numpy())) == "pan_left"
    # 0 draws nothing more: the clips (the evaluation's and the validation's cases among them) are unchanged
    again = ToyWorld(sources, "train", seed=2, size=64, video_stills=0.0)
    assert all(torch.equal(plain.clip(i).frames, again.clip(i).frames) for i in range(5))
    with pytest.raises(ValueError, match="video_stills"):
        ToyWorld(sources, video_stills=1.5)


def test_speed_words_change_the_amplitude(sources):
    world = ToyWorld(sources, "heldout", seed=5)
    slow = video_motion(world.clip(1, motion="pan_right", speed="slow", picture="chelsea").frames.numpy())
    quick = video_motion(world.clip(1, motion="pan_right", speed="quick", picture="chelsea").frames.numpy())
    assert quick.magnitude > 2 * slow.magnitude > 0
    caption = cap.caption("pan_right", "quick", "a cat", "train", np.random.default_rng(0))
    assert "quickly" in caption and "right" in caption


@pytest.mark.parametrize("motion", CAMERA_MOTIONS)
def test_flow_measure_names_each_camera_motion(sources, motion):
    world = ToyWorld(sources, "heldout", seed=9)
    hits = [classify(video_motion(world.clip(i, motion=motion, picture=p).frames.numpy())) == motion
            for i, p in enumerate(("chelsea", "coffee", "rocket"))]
    assert sum(hits) >= 2, motion


def test_object_clips_move_the_object_the_named_way(sources):
    world = ToyWorld(sources, "train", seed=2)
    clip = world.clip(0, motion="object_right", speed="quick")
    diff = (clip.frames[1:] - clip.frames[:-1]).abs().sum(dim=(0, 1))   # where things change
    assert diff.max() > 0
    assert set(OBJECT_MOTIONS) <= set(cap.PARAPHRASES)


def test_minilm_matches_transformers_and_zeroes_padding():
    import runpy
    from pathlib import Path

    # transformers imports torchvision, whose CUDA build needs the test shim beside a CPU torch
    runpy.run_path(str(Path(__file__).resolve().parent.parent / "scripts" / "host_shims" / "sitecustomize.py"))
    transformers = pytest.importorskip("transformers")
    from microcinema_core.text.minilm import MiniLMTextEncoder, package_model_dir

    ours = MiniLMTextEncoder()
    texts = ["a cat, the camera pans to the left", ""]
    out = ours(texts)
    assert out.shape == (2, 77, 384)
    ids, mask = ours.tokenizer(texts)
    reference = transformers.BertModel.from_pretrained(str(package_model_dir()), add_pooling_layer=False).eval()
    with torch.no_grad():
        ref = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    assert (out[real] - ref[real]).abs().max() < 1e-4
    assert out[~real].abs().max() == 0
    assert int(mask[1].sum()) == 2   # the empty prompt is [CLS] [SEP]


def test_toy_vae_file_has_the_taesd_layout_and_round_trips(tmp_path):
    from safetensors.torch import load_file, save_file

    from microcinema_core.vae.taesd_layout import ToyVAE

    torch.manual_seed(0)
    vae = ToyVAE()
    vae.vae_scale.fill_(0.5)
    state = vae.comfy_state_dict()
    assert {k.split(".")[0] for k in state} == {"taesd_encoder", "taesd_decoder", "vae_scale", "vae_shift"}
    assert "taesd_decoder.1.weight" in state            # the key ComfyUI's VAE class looks for
    assert state["taesd_encoder.0.weight"].dtype == torch.float16
    save_file(state, str(tmp_path / "vae.safetensors"))
    again = ToyVAE.from_comfy_state_dict(load_file(str(tmp_path / "vae.safetensors")))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        z = again.encode(x)
        assert z.shape == (1, 4, 8, 8)
        assert torch.allclose(z, again.encoder(x) * 0.18215 / 0.5)


def test_x0_sheet_shows_the_truth_and_both_captions_estimates(sources, tmp_path):
    """The leak diagnostic (experiments/x0_sheet.py) on a random tiny model: per clip the true clip through the VAE,
    then the clean estimates with the own and the opposite caption, each with the motion class it reads."""
    from microcinema_core.config import MicroCinemaConfig
    from microcinema_core.eval.contact_sheet import contact_sheet
    from microcinema_core.models.microcinema import MicroCinemaModel
    from microcinema_core.text.minilm import MiniLMTextEncoder
    from microcinema_core.experiments.x0_sheet import x0_rows
    from microcinema_core.vae.taesd_layout import ToyVAE

    torch.manual_seed(0)
    model = MicroCinemaModel(MicroCinemaConfig.tiny(context_dim=384, zero_terminal_snr=True, prediction="v")).eval()
    vae = ToyVAE().eval()
    rows, labels = x0_rows(model, vae, MiniLMTextEncoder(), sources, motions=("pan_left", "zoom_in"))
    assert len(rows) == len(labels) == 6
    assert all(r.shape == (9, 3, 64, 64) for r in rows)
    assert labels[0].startswith("true pan_left") and "own caption" in labels[1] and "opposite caption" in labels[2]
    assert "left" in labels[1] and "right" in labels[2]
    assert not torch.equal(rows[1], rows[2])      # the caption reaches the estimate
    contact_sheet(rows, tmp_path / "sheet.png", labels=labels)
    assert (tmp_path / "sheet.png").stat().st_size > 1000


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_a_clip_played_backwards_is_the_opposite_motion_with_the_opposite_caption(sources, split):
    """experiments/reversal.py: the reversed frames are the world's clip of the opposite motion (same keyframe,
    same path backwards), and the caption swaps only the motion phrase; real clips are never reversed."""
    from microcinema_core.experiments.reversal import OPPOSITE_MOTION, opposite_caption

    world = ToyWorld(sources, split, "base", seed=3, size=64)
    for i, motion in enumerate(CAMERA_MOTIONS + OBJECT_MOTIONS):
        for speed in ("slow", "normal", "quick"):
            clip = world.clip(i, motion=motion, speed=speed)
            other = opposite_caption(clip.caption, motion, speed)
            assert other is not None, clip.caption
            assert opposite_caption(other, OPPOSITE_MOTION[motion], speed) == clip.caption
            if motion != "static":
                assert other != clip.caption
        if motion.startswith(("pan_", "zoom_", "rotate_")):
            clip = world.clip(i, motion=motion, speed="normal")
            assert classify(video_motion(clip.frames.flip(0).numpy())) == OPPOSITE_MOTION[motion]
    real = world.clip(0, motion="real")
    assert opposite_caption(real.caption, "real", "normal") is None
    assert opposite_caption("the camera pans to the left", "pan_left", "normal") == "the camera pans to the right"


def test_reverse_some_is_seeded_and_only_touches_reversible_clips():
    from microcinema_core.training.time_reversal import reverse_some

    latents = torch.arange(4 * 9, dtype=torch.float32).view(4, 9, 1, 1, 1).expand(4, 9, 4, 2, 2).clone()
    text = torch.zeros(4, 77, 8)
    table = {"text": torch.ones(10, 77, 8), "reversible": torch.tensor([True] * 9 + [False])}
    a = reverse_some(latents, text, [0, 1, 2, 9], [0, 1, 2, 3], table, rate=1.0, seed=0, step=5)
    assert a[2] == 3 and torch.equal(a[0][0, :, 0, 0, 0], latents[0, :, 0, 0, 0].flip(0))
    assert torch.equal(a[0][3], latents[3]) and bool((a[1][:3] == 1).all()) and bool((a[1][3] == 0).all())
    half = [reverse_some(latents, text, [0, 1, 2, 3], [0, 1, 2, 3], table, 0.5, seed=0, step=s)[2] for s in range(40)]
    again = [reverse_some(latents, text, [0, 1, 2, 3], [0, 1, 2, 3], table, 0.5, seed=0, step=s)[2] for s in range(40)]
    assert half == again and 40 < sum(half) < 120      # about half of 160 draws, the same on a rerun
    assert torch.equal(latents[0, :, 0, 0, 0], torch.arange(9, dtype=torch.float32))   # inputs untouched


def test_the_toy_cache_is_the_same_drawn_by_spawned_workers_as_in_process(sources, tmp_path):
    """``build_toy_cache`` with ``workers`` > 0 (the gpu profile's 14: spawned processes, since forked ones
    deadlocked in an H200 run) writes the cache byte for byte as the in-process path does: each clip depends
    on its index alone and the shard is written in index order."""
    from microcinema_core.text.minilm import MiniLMTextEncoder
    from microcinema_core.experiments.encoding import ToyFrozenEncoder, build_toy_cache
    from microcinema_core.vae.taesd_layout import ToyVAE

    torch.manual_seed(0)
    encoder = ToyFrozenEncoder(ToyVAE(), MiniLMTextEncoder())
    world = ToyWorld(sources, "train", "base", seed=4, size=64)
    seen = []
    in_process, spawned = tmp_path / "in_process", tmp_path / "spawned"
    build_toy_cache(world, 6, encoder, in_process, batch=2, workers=0)
    build_toy_cache(world, 6, encoder, spawned, batch=2, workers=2, progress=seen.append)
    assert seen == [2, 2, 2]
    files = sorted(p.relative_to(in_process) for p in in_process.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(spawned) for p in spawned.rglob("*") if p.is_file())
    for name in files:
        assert (in_process / name).read_bytes() == (spawned / name).read_bytes(), name


def test_a_hidden_amplitude_scales_the_motion_and_leaves_every_other_draw_alone(sources):
    plain = ToyWorld(sources, "train", seed=6)
    coupled = ToyWorld(sources, "train", seed=6, amplitude_octaves=1.0)
    amplitudes = [coupled.amplitude(i) for i in range(200)]
    assert 0.5 <= min(amplitudes) < 0.6 and 1.8 < max(amplitudes) <= 2.0          # 2**U(-1, 1)
    assert plain.amplitude(3) == 1.0 and plain.clip(3).meta["amplitude"] == 1.0
    for i in range(4):   # forced to 1, a coupled clip is the plain world's clip, pixel for pixel
        a, b = plain.clip(i), coupled.clip(i, amplitude=1.0)
        assert torch.equal(a.frames, b.frames) and a.caption == b.caption
        clip = coupled.clip(i)
        if clip.motion != "real":   # a real clip records what its whole-frame stride gives (below)
            assert clip.meta["amplitude"] == pytest.approx(coupled.amplitude(i))
    # the caption does not change with it; the measured motion does, in proportion
    half = video_motion(coupled.clip(1, motion="pan_right", picture="astronaut", amplitude=0.5).frames.numpy())
    double = video_motion(coupled.clip(1, motion="pan_right", picture="astronaut", amplitude=2.0).frames.numpy())
    assert 3.0 < double.magnitude / half.magnitude < 5.0
    assert coupled.clip(1, motion="pan_right", amplitude=0.5).caption == coupled.clip(1, motion="pan_right").caption
    # real clips take a longer stride and record the amplitude their whole-frame stride really gives
    real = ToyWorld(sources, "train", seed=6, mix=None, motions=("real",), amplitude_scale=2.0).clip(0)
    assert real.meta["stride"] > 1 and real.meta["amplitude"] == pytest.approx(
        real.meta["stride"] / (sources.video_fps[real.picture] / 2.0), rel=1e-6)
    assert abs(real.meta["amplitude"] - 2.0) < 0.1
    with pytest.raises(ValueError, match="amplitude_octaves"):
        ToyWorld(sources, amplitude_octaves=-1)
    with pytest.raises(ValueError, match="amplitude_scale"):
        ToyWorld(sources, amplitude_scale=0)
