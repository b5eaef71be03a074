"""Customisation data (issue 36, part 1): toy subjects, pairs and unannotated videos; loaders for real data on disk."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from microcinema_core.toyworld.customisation import CustomisationSet, recolour
from microcinema_core.toyworld.scenes import HELD_OUT_SCENES, WHERE, scene_base, scene_names
from microcinema_core.toyworld.sources import HELD_OUT_PICTURES, HELD_OUT_VIDEOS, load_or_gather
from microcinema_core.toyworld.subjects import HELD_OUT_SUBJECTS, SUBJECT_BOXES, cut_out, subject_names
from microcinema_core.toyworld.unannotated import UnannotatedToyVideos
from microcinema_core.training.customisation_data import CustomisationDataError, CustomisationFolder
from microcinema_core.training.summary import SkippedVideoWarning
from microcinema_core.training.train_config import DataConfig
from microcinema_core.training.video_folder import VideoFolderError, unannotated_clips


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return load_or_gather(tmp_path_factory.mktemp("toy") / "sources.npz")


# ---- toy data -------------------------------------------------------------------------------------------
def _same(a, b) -> bool:
    return (torch.equal(a.reference, b.reference) and torch.equal(a.target, b.target) and a.caption == b.caption
            and a.meta == b.meta)


def test_pairs_are_deterministic_by_seed_and_any_size(sources):
    for split in ("train", "heldout"):
        a, b = CustomisationSet(sources, split, seed=3).pair(7), CustomisationSet(sources, split, seed=3).pair(7)
        assert _same(a, b)
        assert not _same(a, CustomisationSet(sources, split, seed=4).pair(7))
    for size in (48, 96):
        pair = CustomisationSet(sources, "train", seed=0, size=size).pair(1)
        assert pair.reference.shape == pair.target.shape == pair.background.shape == (3, size, size)
        assert pair.reference_mask.shape == pair.target_mask.shape == (1, size, size)
        for image in (pair.reference, pair.target):
            assert image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1


def test_held_out_subjects_scenes_and_phrasings_never_in_training(sources):
    assert set(HELD_OUT_SUBJECTS) <= set(HELD_OUT_PICTURES) and len(HELD_OUT_SUBJECTS) >= 6
    assert set(HELD_OUT_SCENES) <= set(HELD_OUT_PICTURES) | set(HELD_OUT_VIDEOS)
    assert not set(subject_names("train")) & set(HELD_OUT_PICTURES)
    assert not set(scene_names("train")) & (set(HELD_OUT_PICTURES) | set(HELD_OUT_VIDEOS))
    held_phrases = {p for train, held in WHERE.values() for p in held}
    assert not held_phrases & {p for train, held in WHERE.values() for p in train}
    train = CustomisationSet(sources, "train", seed=0, size=32)
    seen_subjects, seen_scenes = set(), set()
    for i in range(150):
        pair = train.pair(i)
        seen_subjects.add(pair.subject)
        seen_scenes.add(scene_base(pair.scene))
        assert not any(pair.caption.endswith(" " + p) for p in held_phrases), pair.caption
    assert seen_subjects == set(subject_names("train")) and seen_scenes == set(scene_names("train"))
    held = CustomisationSet(sources, "heldout", seed=0, size=32)
    for i in range(40):
        pair = held.pair(i)
        assert pair.subject in HELD_OUT_SUBJECTS and scene_base(pair.scene) in HELD_OUT_SCENES
        assert scene_base(pair.scene) != pair.subject
        assert any(pair.caption.endswith(" " + p) for p in held_phrases)
    videos = UnannotatedToyVideos(sources, "train", count=4, size=32)
    assert not set(videos.world.pictures) & set(HELD_OUT_PICTURES)
    assert not set(videos.world.videos) & set(HELD_OUT_VIDEOS)


def _subject_error(pair, cutout, flip: bool) -> float:
    """Mean |target - recoloured cut-out pixel| where the target mask is 1, mapping each target pixel back into the
    cut-out by the recorded centre, size and ``flip`` (nearest pixel)."""
    size = pair.target.shape[-1]
    _, ch, cw = cutout.image.shape
    coords = (2 * torch.arange(size) + 1) / size - 1
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    cx, cy = pair.meta["centre"]
    a = (u - cx) / pair.meta["width"]
    b = (v - cy) / pair.meta["height"]
    if flip:
        a = -a
    cols = ((a + 1) / 2 * cw - 0.5).round().long().clamp(0, cw - 1)
    rows = ((b + 1) / 2 * ch - 0.5).round().long().clamp(0, ch - 1)
    expected = recolour(cutout.image[:, rows, cols], *pair.meta["colour"])
    inside = pair.target_mask[0] > 0.999
    return float((pair.target - expected).abs().mean(dim=0)[inside].mean())


def test_the_pasted_subject_is_at_the_recorded_place_size_and_flip(sources):
    cs = CustomisationSet(sources, "train", seed=5, size=96)
    flips = set()
    for index, subject in enumerate(["astronaut", "motorcycle", "camera", "flower"]):
        pair = cs.pair(index, subject=subject)
        flips.add(pair.meta["flip"])
        mask = pair.target_mask[0]
        # the mask sits at the recorded centre with the recorded extent
        ys, xs = torch.nonzero(mask > 0.5, as_tuple=True)
        centre = ((xs.float().mean() + 0.5) / 96 * 2 - 1, (ys.float().mean() + 0.5) / 96 * 2 - 1)
        assert abs(centre[0] - pair.meta["centre"][0]) < 0.03 and abs(centre[1] - pair.meta["centre"][1]) < 0.03
        assert abs((xs.max() - xs.min() + 1) / 96 - 0.9 * pair.meta["width"]) < 0.06
        assert abs((ys.max() - ys.min() + 1) / 96 - 0.9 * pair.meta["height"]) < 0.06
        assert pair.meta["size"] < 0.71 and abs(max(pair.meta["width"], pair.meta["height"]) - pair.meta["size"]) < 1e-6
        # outside the mask the target is the scene exactly; where it differs from the scene the mask is there
        outside = mask == 0
        assert torch.equal(pair.target[:, outside], pair.background[:, outside])
        changed = (pair.target - pair.background).abs().amax(dim=0) > 0.02
        assert changed.any() and bool((mask[changed] > 0).all())
        # inside it, the subject's own pixels, flipped as recorded (the other flip does not fit)
        cutout = cut_out(sources, subject)
        right = _subject_error(pair, cutout, pair.meta["flip"])
        wrong = _subject_error(pair, cutout, not pair.meta["flip"])
        assert right < 0.06 and right < 0.6 * wrong, (subject, right, wrong)
    assert flips == {True, False}


def test_references_show_the_whole_subject_on_plain_grey_or_its_own_photo(sources):
    cs = CustomisationSet(sources, "train", seed=0, size=64)
    kinds = set()
    for i in range(12):
        pair = cs.pair(i)
        kinds.add(pair.meta["reference_background"])
        mask = pair.reference_mask[0]
        assert mask.sum() > 0.2 * 64 * 64
        if pair.meta["reference_background"] == "plain":
            grey = torch.tensor(pair.meta["plain_grey"])
            assert torch.allclose(pair.reference[:, mask == 0], grey.expand(3, int((mask == 0).sum())))
            assert abs(float(mask.sum()) - float(CustomisationSet(sources, "train", seed=0, size=64)
                                                 .pair(i).reference_mask.sum())) < 1e-3
    assert kinds == {"plain", "own"}
    assert all(b.w > 0 and b.h > 0 for b in SUBJECT_BOXES.values())


def test_unannotated_toy_videos_are_toy_clips_without_text(sources):
    videos = UnannotatedToyVideos(sources, "train", count=3, seed=2, size=32)
    assert len(videos) == 3
    clip = videos[1]
    assert isinstance(clip, torch.Tensor) and clip.shape == (9, 3, 32, 32)
    assert torch.equal(clip, UnannotatedToyVideos(sources, "train", count=3, seed=2, size=32)[1])
    with pytest.raises(IndexError):
        videos[3]


def test_the_contact_sheet_puts_reference_and_target_side_by_side(sources):
    from microcinema_core.experiments.customisation_sheet import sheet

    pairs = [CustomisationSet(sources, "heldout", seed=0, size=16).pair(i) for i in range(3)]
    image = sheet(pairs, columns=2)
    assert image.dtype == np.uint8 and image.shape == (2 * 20, 2 * (34 + 4), 3)
    assert np.array_equal(image[:16, :16], (pairs[0].reference.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


# ---- real data on disk ----------------------------------------------------------------------------------
def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _write_pair(folder, caption="a dog on a beach", reference_alpha=False):
    rng = np.random.default_rng(len(str(folder)))
    reference = rng.integers(0, 256, (20, 12, 4 if reference_alpha else 3), dtype=np.uint8)
    if reference_alpha:
        reference[0, 0, 3] = 0      # one transparent pixel: white after loading
    _save(folder / "reference.png", reference)
    _save(folder / "target.jpg", rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    (folder / "caption.txt").write_text(caption + "\n", encoding="utf-8")


def test_real_customisation_folder_reads_both_layouts(tmp_path):
    _write_pair(tmp_path / "set" / "0001", reference_alpha=True)
    _write_pair(tmp_path / "set" / "0002", caption="a  red toy   in a kitchen")
    data = CustomisationFolder(tmp_path / "set", size=16)
    assert len(data) == 2 and data.verify() == 2
    first, second = data[0], data[1]
    assert first.reference.shape == first.target.shape == (3, 16, 16) and first.key == "0001"
    assert first.caption == "a dog on a beach" and second.caption == "a red toy in a kitchen"
    assert 0 <= first.reference.min() and first.reference.max() <= 1
    # a manifest takes precedence, with paths relative to the root
    rows = [{"reference": "0001/reference.png", "target": "0002/target.jpg", "caption": "a dog in a kitchen"}]
    (tmp_path / "set" / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    manifest = CustomisationFolder(tmp_path / "set", size=16)
    assert len(manifest) == 1 and manifest[0].caption == "a dog in a kitchen"
    assert torch.equal(manifest[0].target, second.target)


def test_a_broken_real_customisation_folder_is_refused_naming_the_file_and_the_fix(tmp_path):
    root = tmp_path / "set"
    _write_pair(root / "good")
    _write_pair(root / "no_target")
    (root / "no_target" / "target.jpg").unlink()
    _write_pair(root / "silent", caption="   ")
    with pytest.raises(CustomisationDataError) as info:
        CustomisationFolder(root)
    message = str(info.value)
    assert "2 broken pair(s)" in message and "fix:" in message
    assert str(root / "no_target") in message and "target.png" in message
    assert str(root / "silent" / "caption.txt") in message and "empty caption" in message
    # an image that is not one: named when read, and by verify()
    (root / "no_target").rename(tmp_path / "aside")
    (root / "silent" / "caption.txt").write_text("a dog")
    (root / "silent" / "reference.png").write_bytes(b"not a png")
    data = CustomisationFolder(root)
    with pytest.raises(CustomisationDataError, match="silent.reference.png: cannot read the image.*fix:"):
        data[1]
    with pytest.raises(CustomisationDataError, match="1 unreadable image"):
        data.verify()
    (root / "pairs.jsonl").write_text('{"reference": "good/reference.png", "target": "gone.png", "caption": "x"}\n')
    with pytest.raises(CustomisationDataError, match=r"pairs.jsonl:1: no such file: target .*gone.png"):
        CustomisationFolder(root)
    with pytest.raises(CustomisationDataError, match="no such folder"):
        CustomisationFolder(tmp_path / "nowhere")


def test_the_video_folder_loader_reads_a_tiny_mp4_and_skips_a_broken_one(tmp_path):
    import imageio.v2 as imageio

    folder = tmp_path / "videos"
    (folder / "sub").mkdir(parents=True)
    frames = [np.full((32, 32, 3), 8 * k, dtype=np.uint8) for k in range(24)]
    imageio.mimwrite(folder / "sub" / "ramp.mp4", frames, fps=8, macro_block_size=16)
    (folder / "broken.mp4").write_bytes(b"not a video")
    (folder / "notes.txt").write_text("ignored")
    cfg = DataConfig(num_frames=5, fps=[2.0], resolution=16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clips = unannotated_clips(folder, cfg)
    assert len(clips) == 1 and clips[0].caption == "" and clips[0].key.startswith("sub/ramp.mp4@")
    assert clips[0].frames.shape == (5, 3, 16, 16)
    assert clips[0].frames[-1].mean() > clips[0].frames[0].mean() + 0.3   # 4 frames apart at 8 fps: a ramp
    assert any(issubclass(w.category, SkippedVideoWarning) and "broken.mp4" in str(w.message) for w in caught)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("x")
    with pytest.raises(VideoFolderError, match=r"no video files.*\.txt.*\.mp4"):
        unannotated_clips(empty, cfg)
    with pytest.raises(VideoFolderError, match="no such folder"):
        unannotated_clips(tmp_path / "nowhere", cfg)
