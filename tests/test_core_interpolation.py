"""Core TSR over a whole video: pair construction, assembly, frame counts (2 -> 8 -> 32 fps)."""
import pytest
import torch

from microcinema_core.config import MicroCinemaConfig
from microcinema_core.diffusion.interpolation import (adjacent_pairs, assemble_clips, interpolate_video,
                                                      interpolated_length)
from microcinema_core.errors import MicroCinemaInputError
from microcinema_core.models.microcinema import MicroCinemaModel


def test_pairs_and_assembly_keep_the_given_frames():
    frames = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 4, 2, 2)
    pairs = adjacent_pairs(frames)
    assert pairs.shape == (2, 2, 4, 2, 2)
    assert torch.equal(pairs[1, 0], frames[1]) and torch.equal(pairs[1, 1], frames[2])
    clips = torch.full((2 * 5, 4, 2, 2), 7.0)
    video = assemble_clips(pairs, clips, 5)
    assert video.shape[0] == interpolated_length(3, 5) == 9
    assert [float(v) for v in video[:, 0, 0, 0]] == [0, 7, 7, 7, 1, 7, 7, 7, 2]


def test_paper_frame_counts():
    assert interpolated_length(9, 5, passes=1) == 33   # 2 fps -> 8 fps
    assert interpolated_length(9, 5, passes=2) == 129  # -> 32 fps


def test_interpolate_video_with_a_tiny_tsr_model():
    torch.manual_seed(0)
    model = MicroCinemaModel(MicroCinemaConfig.tiny("tsr")).eval()
    frames = torch.randn(2, 4, 8, 8)
    video = interpolate_video(model, frames, torch.randn(1, 77, 64), passes=2, steps=1, pairs_per_batch=2)
    assert video.shape == (17, 4, 8, 8)
    assert torch.equal(video[0], frames[0]) and torch.equal(video[-1], frames[1])
    assert torch.isfinite(video).all()


def test_an_untrained_residual_tsr_model_fills_in_the_linear_interpolation():
    """prediction "x0_residual" (the toy TSR): the head's zero start means z_0 = the first/last interpolation, so
    every sampled in-between frame is that blend (a wrong eps conversion or head init gives noise)."""
    torch.manual_seed(0)
    model = MicroCinemaModel(MicroCinemaConfig.tiny("tsr", prediction="x0_residual")).eval()
    frames = torch.randn(3, 4, 8, 8)
    video = interpolate_video(model, frames, torch.randn(1, 77, 64), passes=1, steps=4, pairs_per_batch=1)
    weights = torch.linspace(0, 1, 5).view(5, 1, 1, 1)
    blend = torch.cat([(1 - weights[:-1]) * frames[i] + weights[:-1] * frames[i + 1] for i in range(2)] + [frames[2:]])
    assert video.shape == (9, 4, 8, 8)
    assert torch.allclose(video, blend, atol=1e-4), (video - blend).abs().max()


def test_errors_name_the_problem():
    with pytest.raises(MicroCinemaInputError, match="frames >= 2"):
        adjacent_pairs(torch.zeros(1, 4, 8, 8))
    base = MicroCinemaModel(MicroCinemaConfig.tiny("base"))
    with pytest.raises(MicroCinemaInputError, match="needs a TSR model"):
        interpolate_video(base, torch.zeros(3, 4, 8, 8), torch.zeros(1, 77, 64))
