"""Learned behaviour of the SHIPPED toy bundle (models/: 128 px since 2026-12-07), on held-out pictures and phrasings.

Only what the shipped files have learned is asserted (docs/toy_results.md): speed words set the motion amplitude,
the centre frame keeps the keyframe about as well as the VAE itself, and gamma's two ends move the motion the
measured way (a few per cent, not the 2x the issue asks). Motion *direction* is asserted over HTTP in
tests/test_workflows_host.py. TSR does not beat blending at 128 px (0.6-0.7 dB below it): what is asserted is that
it stays near the blend it corrects.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from microcinema_core.eval.flow_motion import video_motion
from microcinema_core.eval.image_metrics import psnr
from microcinema_core.toyworld import captions as cap
from microcinema_core.experiments.evaluate import CFG, load_bundle
from microcinema_core.experiments.probe import heldout_cases
from microcinema_core.experiments.probe import sample_videos
from microcinema_core.toyworld.sources import load_or_gather

MODELS = Path(__file__).resolve().parent.parent / "models"
MOVING = ("pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out", "rotate_cw", "rotate_ccw")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.manual_seed(0)
    base, tsr, vae, text = load_bundle(MODELS)
    return base, vae, text, load_or_gather(tmp_path_factory.mktemp("toy") / "sources.npz")


def _magnitudes(frames):
    return np.array([video_motion(f.numpy()).magnitude for f in frames])


def test_quickly_moves_more_than_slowly(bundle):
    base, vae, text, sources = bundle
    cases = heldout_cases(sources, 6, size=base.config.resolution, seed=2027, motions=MOVING)
    keys = torch.stack([c.frames[4] for c in cases])
    out = {}
    for speed in ("slow", "quick"):
        captions = [cap.caption(c.motion, speed, sources.subject(c.picture), "heldout", np.random.default_rng([7, i]))
                    for i, c in enumerate(cases)]
        assert all(("slowly" if speed == "slow" else "quickly") in t for t in captions)
        frames, _ = sample_videos(base, vae, text, keys, captions, steps=20, cfg=CFG, gamma=0.02, seed=0)
        out[speed] = _magnitudes(frames)
    assert (out["quick"] > out["slow"]).all(), out
    assert out["quick"].mean() > 1.3 * out["slow"].mean(), out


def test_the_keyframe_is_kept(bundle):
    base, vae, text, sources = bundle
    cases = heldout_cases(sources, 6, size=base.config.resolution, seed=2028, motions=MOVING)
    keys = torch.stack([c.frames[4] for c in cases])
    frames, _ = sample_videos(base, vae, text, keys, [c.caption for c in cases], steps=20, cfg=CFG, gamma=0.02, seed=0)
    with torch.no_grad():
        vae_psnr = float(psnr(vae.decode(vae.encode(keys)), keys).mean())
    centre_psnr = float(psnr(frames[:, 4], keys).mean())
    assert centre_psnr > vae_psnr - 1.0 and centre_psnr >= 23.0, (centre_psnr, vae_psnr)   # the bars


def test_the_gamma_ends_differ_in_motion_the_measured_way(bundle):
    """The Noise Prior node's two ends on the same keyframes, captions and noise: gamma 0.1 moves less than -0.1.
    Measured (docs/toy_results.md): a few per cent less, far from the 2x the issue asks for, which the shipped
    base does not reach; asserted is only the direction, on every video's pair and on the mean."""
    base, vae, text, sources = bundle
    cases = heldout_cases(sources, 6, size=base.config.resolution, seed=2028, motions=MOVING)
    keys = torch.stack([c.frames[4] for c in cases])
    out = {}
    for gamma in (-0.1, 0.1):
        frames, _ = sample_videos(base, vae, text, keys, [c.caption for c in cases], steps=20, cfg=CFG, gamma=gamma,
                                  seed=0)
        out[gamma] = _magnitudes(frames)
    assert out[0.1].mean() < out[-0.1].mean(), out
    assert (out[0.1] < out[-0.1]).mean() >= 0.5, out


def test_the_shipped_tsr_stays_near_the_interpolation_it_corrects(tmp_path):
    """The evaluation's TSR table on the shipped files (2 held-out toy clips, 2 carphone clips), at the toy
    workflows' TSR steps (``TOY_TSR_STEPS``, 2). The shipped TSR corrects the first/last interpolation (prediction
    "x0_residual"). At 128 px it does NOT beat that blend: on 16 clips per set its decoded in-between frames are
    0.07-0.26 dB below the blend's (0.6-0.7 at 20 steps; docs/toy_results.md) and its latents 1.03-1.12x the
    blend's distance from the truth. Asserted is what holds: it stays within 1.5 dB and 2x of the blend, where the
    eps TSR of the 64-px bundle was 6-22x further; the VAE ceiling bounds every latent candidate."""
    from microcinema_core.experiments.evaluate import tsr_vs_blend

    _, tsr, vae, text = load_bundle(MODELS)
    assert tsr.config.prediction == "x0_residual" and tsr.config.resolution == 128
    results = tsr_vs_blend(tsr, vae, text, load_or_gather(tmp_path / "sources.npz"), 2, seeds=(0,),
                           sets=("toy_heldout", "real_carphone"), with_rife=False)
    assert set(results) == {"toy_heldout", "real_carphone"}
    for row in results.values():
        assert row["clips"] == 2
        for key in ("tsr", "latent_blend", "tsr_from_blend"):
            assert row[f"{key}_psnr_db"] <= row["vae_ceiling_psnr_db"] + 0.5, (key, row)
        assert row["tsr_latent_mse"] < 2.0 * row["latent_blend_latent_mse"], row
        assert abs(row["tsr_psnr_db"] - row["latent_blend_psnr_db"]) < 1.5, row


def test_validate_scores_the_training_pictures_with_split_train(tmp_path, capsys):
    import json

    from microcinema_core.experiments import validate

    sources = tmp_path / "sources.npz"
    base = MODELS / "microcinema" / "microcinema_toy_base.safetensors"
    vae = MODELS / "vae" / "microcinema_toy_vae.safetensors"
    for split in ("train", "heldout"):
        assert validate.main(["--base", str(base), "--vae", str(vae), "--sources", str(sources), "--split", split,
                              "--count", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["split"] for r in rows] == ["train", "heldout"] and all(r["videos"] == 2 for r in rows)
    # other pictures, so other keyframes: the VAE's own reconstruction of them differs
    assert rows[0]["vae_recon_psnr_db"] != rows[1]["vae_recon_psnr_db"]
