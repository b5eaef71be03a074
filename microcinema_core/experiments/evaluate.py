"""Evaluate the shipped toy bundle on pictures and phrasings training never saw (docs/toy_results.md).

    python -m microcinema_core.experiments.evaluate --models models --out docs/toy_results [--count 108]

Settings are fixed before the run (they are the toy workflow's): 20 Euler steps, CFG 1.25, gamma 0.02, seed 0. CFG
was 5 up to the fourth 64-px run and 2 for the fifth (its empty prompt means "no motion"); for the 128-px bundle 1.25
was chosen on validation cases that share no video with this evaluation (held-out cases of seed 2029, not 2026;
``bench/frame_fidelity.py``): the same agreement as CFG 2, and frames far from the keyframe 5 dB nearer the truth.
Measures (each written to ``results.json``, plots and contact sheets as PNG beside it):

* motion follows the text: optical-flow class of each generated video vs the prompt's class, confusion matrix;
* the keyframe is kept: PSNR / SSIM of the generated centre frame against the keyframe, next to the toy VAE's
  own reconstruction PSNR on the same keyframes;
* speed words: the same keyframe, phrasing and seed with "slowly" and with "quickly": flow magnitude;
* the keyframe kept, in features: MobileNetV2 similarity of every frame to its keyframe vs a shuffled keyframe;
* gamma: flow magnitude and centre PSNR over the Noise Prior node's gamma range (plot, with the 2x bar);
* few steps: agreement, centre PSNR and time at 5 / 10 / 20 / 50 steps, with and without the prior;
* text reliance: eps error with the opposite motion's caption vs the clip's own (does the model read direction?);
* TSR (over three sampling seeds) vs a linear blend (in pixels, and through the same VAE) vs RIFE on held-out 4x-rate
  clips (toy world), the held-out real video (carphone) and a training one (bikes), with the VAE's own ceiling;
* contact sheets of six held-out cases (keyframe, base video, TSR video).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..atomic import atomic_path
from ..diffusion.interpolation import interpolate_video
from ..diffusion.pipeline import generate
from ..eval.contact_sheet import contact_sheet
from ..eval.flow_motion import CLASSES, classify, confusion_matrix, video_motion
from ..eval.image_metrics import psnr, ssim
from ..toyworld import captions as cap
from ..toyworld.motions import CAMERA_MOTIONS
from ..toyworld.world import ToyWorld
from .probe import heldout_cases, per_frame_mean_error, probe_text_reliance, sample_videos
from .toy_files import FILES, TOY_TSR_STEPS

STEPS, CFG, GAMMA, SEED = 20, 1.25, 0.02, 0
EVALUATION_CASES_SEED = 2026    # the held-out cases of this evaluation; validation (experiments/validate.py) uses others
GAMMAS = (-0.1, -0.06, -0.02, 0.02, 0.06, 0.1)   # the Noise Prior node's range (nodes/helpers/validators.py GAMMA_RANGE)
TSR_SEEDS = (0, 1, 2)                              # sampling seeds of the TSR comparison (its spread)
FEW_STEPS = (5, 10, 20, 50)
SECTIONS = ("motion_and_keyframe", "speed_words", "gamma", "text_reliance", "tsr", "few_steps")                        # the paper's appendix fig. 5 claim: few steps with the prior


def load_bundle(models: Path):
    from ..text.minilm import MiniLMTextEncoder
    from ..vae.taesd_layout import ToyVAE
    from ..weights.checkpoint import load_checkpoint

    base = load_checkpoint(models / "microcinema" / FILES["base"], dtype="fp32").eval()
    tsr = load_checkpoint(models / "microcinema" / FILES["tsr"], dtype="fp32").eval()
    vae = ToyVAE.load(models / "vae" / FILES["vae"])
    return base, tsr, vae, MiniLMTextEncoder()


def _flows(frames: torch.Tensor) -> list:
    return [video_motion(f.numpy()) for f in frames]


def motion_and_keyframe(base, vae, text, sources, count: int, cases_seed: int = EVALUATION_CASES_SEED,
                        cfg: float = CFG, split: str = "heldout") -> dict:
    cases = heldout_cases(sources, count, seed=cases_seed, size=base.config.resolution, split=split)
    keyframes = torch.stack([c.frames[4] for c in cases])
    frames, latents = sample_videos(base, vae, text, keyframes, [c.caption for c in cases], steps=STEPS, cfg=cfg,
                                    gamma=GAMMA, seed=SEED)
    motions = _flows(frames)
    predicted = [classify(m) for m in motions]
    truth_predicted = [classify(video_motion(c.frames.numpy())) for c in cases]
    with torch.no_grad():
        key_latents = vae.encode(keyframes)
        recon = vae.decode(key_latents)
    matrix = confusion_matrix([c.motion for c in cases], predicted)
    records = [{"picture": c.picture, "caption": c.caption, "motion": c.motion, "speed": c.speed,
                "measured": p, "magnitude_px": round(m.magnitude, 3)} for c, p, m in zip(cases, predicted, motions)]
    return {
        "videos": count, "pictures": sorted({c.picture for c in cases}),
        "agreement": float(np.mean([p == c.motion for p, c in zip(predicted, cases)])),
        "chance": 1.0 / len(CAMERA_MOTIONS),
        "classifier_on_true_clips": float(np.mean([p == c.motion for p, c in zip(truth_predicted, cases)])),
        "confusion": {"classes": list(CLASSES), "matrix": matrix.tolist()},
        "centre_psnr_db": float(psnr(frames[:, 4], keyframes).mean()),
        "centre_ssim": float(ssim(frames[:, 4], keyframes).mean()),
        "vae_recon_psnr_db": float(psnr(recon, keyframes).mean()),
        "vae_recon_ssim": float(ssim(recon, keyframes).mean()),
        "per_frame_mean_error": per_frame_mean_error(latents, key_latents),
        "records": records,
    }, cases, frames


def speed_words(base, vae, text, sources, count: int) -> dict:
    moving = tuple(m for m in CAMERA_MOTIONS if m != "static")
    cases = heldout_cases(sources, count, size=base.config.resolution, seed=2027, motions=moving)
    keyframes = torch.stack([c.frames[4] for c in cases])
    out = {}
    for speed in ("slow", "quick"):
        captions = [cap.caption(c.motion, speed, sources.subject(c.picture), "heldout", np.random.default_rng([7, i]))
                    for i, c in enumerate(cases)]
        frames, _ = sample_videos(base, vae, text, keyframes, captions, steps=STEPS, cfg=CFG, gamma=GAMMA, seed=SEED)
        out[speed] = [m.magnitude for m in _flows(frames)]
        out[f"{speed}_example_caption"] = captions[0]
    slow, quick = np.array(out["slow"]), np.array(out["quick"])
    return {"videos_per_word": count, "mean_px_slow": float(slow.mean()), "mean_px_quick": float(quick.mean()),
            "quick_larger_fraction": float((quick > slow).mean()),
            "example": [out["slow_example_caption"], out["quick_example_caption"]]}


def gamma_sweep(base, vae, text, sources, count: int, plot: Path) -> dict:
    moving = tuple(m for m in CAMERA_MOTIONS if m != "static")
    cases = heldout_cases(sources, count, size=base.config.resolution, seed=2028, motions=moving)
    keyframes = torch.stack([c.frames[4] for c in cases])
    rows = []
    for gamma in GAMMAS:
        frames, _ = sample_videos(base, vae, text, keyframes, [c.caption for c in cases], steps=STEPS, cfg=CFG,
                                  gamma=gamma, seed=SEED)
        motions = _flows(frames)
        rows.append({"gamma": gamma, "mean_px": float(np.mean([m.magnitude for m in motions])),
                     "agreement": float(np.mean([classify(m) == c.motion for m, c in zip(motions, cases)])),
                     "centre_psnr_db": float(psnr(frames[:, 4], keyframes).mean())})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    magnitudes = [r["mean_px"] for r in rows]
    ratio = max(magnitudes) / max(min(magnitudes), 1e-9)
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    gammas = [r["gamma"] for r in rows]
    ax.plot(gammas, magnitudes, "o-", color="tab:blue")
    ax.axhline(min(magnitudes) * 2, color="tab:blue", ls=":", lw=1, label="2x the smallest flow (the bar)")
    ax.set_xlabel("gamma (inference prior shift)")
    ax.set_ylabel("mean optical-flow magnitude (px / frame)", color="tab:blue")
    right = ax.twinx()
    right.plot(gammas, [r["centre_psnr_db"] for r in rows], "s--", color="tab:red")
    right.set_ylabel("centre frame vs keyframe PSNR (dB)", color="tab:red")
    ax.set_title(f"toy base, {count} held-out videos per gamma: largest / smallest flow {ratio:.2f}x", fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(plot, dpi=120)
    plt.close(fig)
    return {"videos_per_gamma": count, "rows": rows, "largest_over_smallest": ratio,
            "monotone_decreasing": bool(all(a > b for a, b in zip(magnitudes, magnitudes[1:])))}


def keyframe_similarity_vs_shuffled(cases, frames) -> dict:
    """MobileNetV2 feature similarity of every generated frame to its own keyframe, against the same frames to
    another case's keyframe (the cases rolled by half their number: a shuffle with no case left in place)."""
    from ..eval.mobilenet import keyframe_similarity, load_mobilenet_v2

    net = load_mobilenet_v2()
    keys = [c.frames[4].permute(1, 2, 0) for c in cases]            # [H, W, 3], as the features take frames
    videos = [f.permute(0, 2, 3, 1) for f in frames]
    other = len(cases) // 2
    own = np.stack([keyframe_similarity(f, keys[i], net) for i, f in enumerate(videos)])
    shuffled = np.stack([keyframe_similarity(f, keys[(i + other) % len(cases)], net) for i, f in enumerate(videos)])
    return {"videos": len(cases), "own_per_frame": own.mean(0).round(4).tolist(),
            "shuffled_per_frame": shuffled.mean(0).round(4).tolist(), "own_mean": float(own.mean()),
            "shuffled_mean": float(shuffled.mean()),
            "every_frame_nearer_own_fraction": float((own > shuffled).mean())}


def few_steps(base, vae, text, sources, count: int) -> dict:
    """Agreement, centre PSNR and time at 5-50 Euler steps, with the prior (the workflow's gamma) and without it
    (``mu = 0``: gamma = -lambda), on held-out cases (appendix fig. 5: 5 steps suffice for simple motion)."""
    cases = heldout_cases(sources, count, seed=EVALUATION_CASES_SEED, size=base.config.resolution)
    keyframes = torch.stack([c.frames[4] for c in cases])
    rows = []
    for prior in (True, False):
        for steps in FEW_STEPS:
            t0 = time.perf_counter()
            frames, _ = sample_videos(base, vae, text, keyframes, [c.caption for c in cases], steps=steps, cfg=CFG,
                                      gamma=GAMMA if prior else -base.config.noise_prior_lambda, seed=SEED)
            seconds = time.perf_counter() - t0
            rows.append({"prior": prior, "steps": steps,
                         "agreement": float(np.mean([classify(m) == c.motion for m, c in zip(_flows(frames), cases)])),
                         "centre_psnr_db": float(psnr(frames[:, 4], keyframes).mean()),
                         "seconds_per_video": seconds / count})
    by = {(r["prior"], r["steps"]): r for r in rows}
    return {"videos": count, "rows": rows,
            "five_vs_fifty_with_prior": {k: by[(True, 5)][k] / max(by[(True, 50)][k], 1e-9)
                                         for k in ("agreement", "centre_psnr_db")}}


def _blend(first: torch.Tensor, last: torch.Tensor, n: int) -> torch.Tensor:
    w = torch.linspace(0, 1, n)[1:-1].view(n - 2, 1, 1, 1)
    return (1 - w) * first + w * last


TSR_FROM_BLEND_DENOISE = 0.4   # TSR started part-way from the blend it is given (generate's denoise)


TSR_CLIP_SETS = ("toy_heldout", "real_carphone", "real_bikes")


def tsr_vs_blend(tsr, vae, text, sources, count: int, seeds=TSR_SEEDS, sets=TSR_CLIP_SETS, with_rife: bool = True,
                 steps: int = TOY_TSR_STEPS, clips_by_set: Optional[dict] = None) -> dict:
    """Restored in-between frames: our TSR vs a linear blend, and what the VAE alone allows.

    ``blend_psnr_db`` blends the true end frames in pixels (no VAE); ``latent_blend_psnr_db`` blends the encoded
    end frames and decodes (the same VAE path as TSR, so the two differ only by the TSR model); the
    ``vae_ceiling_psnr_db`` is the VAE's own reconstruction of the true in-between frames, the best any
    latent model can reach. ``*_latent_mse`` compare the in-between latents with the true frames' latents, where
    TSR works and no VAE ceiling hides the difference; ``tsr_from_blend_*`` start TSR's sampler from the latent
    blend at ``TSR_FROM_BLEND_DENOISE`` instead of from noise: what TSR adds to the blend. ``steps``: TSR's Euler
    steps (1 = its single prediction of the clean clip from pure noise, the mean over what it could draw);
    ``clips_by_set`` ({name: [clips]}) replaces the evaluation's clip sets (a bench's validation clips)."""
    results = {}
    empty = text([""])
    size = tsr.config.resolution
    rife = _rife() if with_rife else None
    if clips_by_set is None:
        clips_by_set = {name: (_toy_tsr_clips(sources, count, size) if name == "toy_heldout" else
                               real_tsr_clips(sources, count, size, name.removeprefix("real_"))) for name in sets}
    for name, clips in clips_by_set.items():
        psnrs, mses = defaultdict(list), defaultdict(list)   # per frame (dB) / per clip, by candidate
        per_seed = defaultdict(lambda: defaultdict(list))    # TSR's by sampling seed: the spread
        for i, truth in enumerate(clips):
            n, middle = truth.shape[0], truth[1:-1]
            with torch.no_grad():
                ends = vae.encode(truth[[0, -1]])
                true_latents = vae.encode(middle)

                def in_between(denoise: float, seed: int) -> torch.Tensor:
                    return generate(tsr, ends[None], empty, None, num_frames=n, steps=steps, cfg=1.0, gamma=GAMMA,
                                    seed=seed * 1000 + i, denoise=denoise)[1:-1].float()

                latents = {"latent_blend": _blend(ends[0], ends[1], n), "vae_ceiling": true_latents}
                for seed in seeds:
                    for key, denoise in (("tsr", 1.0), ("tsr_from_blend", TSR_FROM_BLEND_DENOISE)):
                        value = in_between(denoise, seed)
                        per_seed[key][seed].append((psnr(vae.decode(value), middle),
                                                    float((value - true_latents).pow(2).mean())))
                for key, value in latents.items():
                    psnrs[key].append(psnr(vae.decode(value), middle))
                    mses[key].append(float((value - true_latents).pow(2).mean()))
                if rife is not None:
                    from ..eval.rife import interpolate

                    times = [k / (n - 1) for k in range(1, n - 1)]
                    psnrs["rife"].append(psnr(interpolate(rife, truth[:1], truth[-1:], times)[0], middle))
            psnrs["blend"].append(psnr(_blend(truth[0], truth[-1], n), middle))
        row = {"clips": len(clips), "seeds": list(seeds),
               **{f"{k}_psnr_db": float(torch.cat(v).mean()) for k, v in psnrs.items()},
               **{f"{k}_latent_mse": float(np.mean(mses[k])) for k in ("latent_blend",)}}
        for key, by_seed in per_seed.items():
            seed_psnr = [float(torch.cat([p for p, _ in by_seed[s]]).mean()) for s in seeds]
            seed_mse = [float(np.mean([m for _, m in by_seed[s]])) for s in seeds]
            row.update({f"{key}_psnr_db": float(np.mean(seed_psnr)), f"{key}_psnr_db_seed_spread": float(np.ptp(seed_psnr)),
                        f"{key}_latent_mse": float(np.mean(seed_mse)),
                        f"{key}_latent_mse_seed_spread": float(np.ptp(seed_mse))})
        row["tsr_beats_latent_blend_beyond_spread"] = bool(
            row["tsr_psnr_db"] - row["latent_blend_psnr_db"] > row["tsr_psnr_db_seed_spread"]
            and row["latent_blend_latent_mse"] - row["tsr_latent_mse"] > row["tsr_latent_mse_seed_spread"])
        results[name] = row
    return results


def _rife():
    """RIFE with its real weights (eval/rife.py), or None where they are not installed."""
    try:
        from ..eval.rife import load_rife

        return load_rife()
    except (FileNotFoundError, ImportError, OSError):
        return None


def _toy_tsr_clips(sources, count: int, size: int) -> list:
    world = ToyWorld(sources, "heldout", "tsr", seed=2029, size=size)
    return [world.clip(i, motion=CAMERA_MOTIONS[1 + i % 8]).frames for i in range(count)]


def real_tsr_clips(sources, count: int, size: int, name: str = "carphone") -> list:
    """4x-rate clips (8 fps: 5 frames over 0.5 s) of a held-out real video, centre-cropped to ``size``."""
    video = sources.videos[name]
    stride = max(1, round(sources.video_fps[name] / 8.0))
    starts = np.linspace(0, len(video) - 4 * stride - 1, count).astype(int)
    clips = []
    for s in starts:
        frames = torch.from_numpy(video[s:s + 4 * stride + 1:stride]).permute(0, 3, 1, 2).float() / 255
        h, w = frames.shape[-2:]
        side = min(h, w)
        frames = frames[..., (h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
        clips.append(torch.nn.functional.interpolate(frames, size=(size, size), mode="bilinear", antialias=True,
                                                     align_corners=False).clamp(0, 1))
    return clips


def sheets(base, tsr, vae, text, cases, frames, out: Path) -> list:
    """Six held-out cases (one per motion family): keyframe + 9 base frames, then the 33 TSR frames."""
    wanted = ["pan_left", "pan_up", "zoom_in", "zoom_out", "rotate_cw", "static"]
    chosen = [next(i for i, c in enumerate(cases) if c.motion == m) for m in wanted]
    empty = text([""])
    paths = []
    for k, i in enumerate(chosen):
        with torch.no_grad():
            video_latent = vae.encode(frames[i])
            fine = vae.decode(interpolate_video(tsr, video_latent, empty, passes=1, steps=TOY_TSR_STEPS,
                                                gamma=GAMMA, seed=SEED))
        label = f'"{cases[i].caption}" ({cases[i].picture}, held out)'
        rows = [torch.cat([cases[i].frames[4:5], frames[i]]), fine]
        paths.append(contact_sheet(rows, out / f"case_{k + 1}_{cases[i].motion}.png",
                                   labels=[label + ": keyframe | base 9 frames (2 fps)", "TSR x4: 33 frames (8 fps)"],
                                   max_columns=17))
    return paths


def markdown(results: dict) -> str:
    """The tables of docs/toy_results.md, from ``results.json``."""
    m = results["motion_and_keyframe"]
    lines = [f"Settings: {results['settings']}; {m['videos']} videos from held-out pictures {m['pictures']} "
             "with held-out phrasings.", "",
             "| measure | value |", "|---|---|",
             f"| motion-text agreement (flow class == prompt class) | **{m['agreement']:.1%}** (chance {m['chance']:.1%}; "
             f"the flow measure on the true clips: {m['classifier_on_true_clips']:.1%}) |",
             f"| centre frame vs keyframe: PSNR / SSIM | {m['centre_psnr_db']:.2f} dB / {m['centre_ssim']:.3f} |",
             f"| toy VAE's own reconstruction of the keyframes: PSNR / SSIM | {m['vae_recon_psnr_db']:.2f} dB / "
             f"{m['vae_recon_ssim']:.3f} |",
             f"| per-frame mean error (latent) | {m['per_frame_mean_error']:.3f} |", "",
             "Confusion matrix (rows: prompt class, columns: measured class):", "",
             "| prompt \\ measured | " + " | ".join(m["confusion"]["classes"]) + " |",
             "|---" * (len(m["confusion"]["classes"]) + 1) + "|"]
    for name, row in zip(m["confusion"]["classes"], m["confusion"]["matrix"]):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    sw = results["speed_words"]
    lines += ["", f"Speed words ({sw['videos_per_word']} videos each, same keyframe, phrasing and seed): mean flow "
              f"{sw['mean_px_slow']:.2f} px/frame with \"slowly\", {sw['mean_px_quick']:.2f} with \"quickly\"; "
              f"quickly > slowly in {sw['quick_larger_fraction']:.0%} of pairs. Example: {sw['example']}.", "",
              "| gamma | mean flow (px/frame) | agreement | centre PSNR (dB) |", "|---|---|---|---|"]
    for row in results["gamma"]["rows"]:
        lines.append(f"| {row['gamma']} | {row['mean_px']:.3f} | {row['agreement']:.1%} | {row['centre_psnr_db']:.2f} |")
    g = results["gamma"]
    lines += ["", f"Largest / smallest mean flow over the node's gamma range: **{g.get('largest_over_smallest', 0):.2f}x** "
              f"(bar: 2x); monotone decreasing over gamma: {g['monotone_decreasing']}.", ""]
    if "keyframe_similarity" in results:
        k = results["keyframe_similarity"]
        lines += [f"Frame-to-keyframe similarity (MobileNetV2 features, {k['videos']} videos): own keyframe "
                  f"{k['own_mean']:.3f}, a shuffled keyframe {k['shuffled_mean']:.3f}; a frame is nearer its own "
                  f"keyframe in {k['every_frame_nearer_own_fraction']:.1%} of frames. Per frame (own / shuffled): "
                  + ", ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(k["own_per_frame"], k["shuffled_per_frame"])) + ".",
                  ""]
    seeds = next(iter(results["tsr"].values())).get("seeds", [SEED])
    lines += [f"TSR (mean over sampling seeds {seeds}, +- their spread max - min) against a blend of the two encoded "
              "frames through the same VAE, RIFE (real weights, pixels), a pixel blend and the VAE's own ceiling:", "",
              "| TSR clips | TSR PSNR (dB) | blend through the VAE (dB) | RIFE (dB) | pixel blend (dB) | VAE ceiling "
              "(dB) | latent MSE: TSR / blend | beats the blend beyond the spread |", "|---|---|---|---|---|---|---|---|"]
    for name, row in results["tsr"].items():
        spread = row.get("tsr_psnr_db_seed_spread", 0.0)
        mse_spread = row.get("tsr_latent_mse_seed_spread", 0.0)
        rife = f"{row['rife_psnr_db']:.2f}" if "rife_psnr_db" in row else "n/a"
        lines.append(f"| {name} ({row['clips']} clips, 3 in-between frames each) | {row['tsr_psnr_db']:.2f} +- {spread:.2f} | "
                     f"{row['latent_blend_psnr_db']:.2f} | {rife} | {row['blend_psnr_db']:.2f} | "
                     f"{row['vae_ceiling_psnr_db']:.2f} | {row['tsr_latent_mse']:.4f} +- {mse_spread:.4f} / "
                     f"{row['latent_blend_latent_mse']:.4f} | {row.get('tsr_beats_latent_blend_beyond_spread', 'n/a')} |")
    if "few_steps" in results:
        f = results["few_steps"]
        lines += ["", f"Few steps ({f['videos']} held-out videos per row, CFG {CFG}; without the prior: mu = 0):", "",
                  "| steps | prior | agreement | centre PSNR (dB) | s / video |", "|---|---|---|---|---|"]
        for row in f["rows"]:
            lines.append(f"| {row['steps']} | {'yes' if row['prior'] else 'no'} | {row['agreement']:.1%} | "
                         f"{row['centre_psnr_db']:.2f} | {row['seconds_per_video']:.2f} |")
        r = f["five_vs_fifty_with_prior"]
        lines += ["", f"5 steps with the prior keep {r['agreement']:.1%} of the 50-step agreement and "
                  f"{r['centre_psnr_db']:.1%} of its PSNR (goal: 95 %)."]
    if "text_reliance" in results:
        tr = results["text_reliance"]
        lines += ["", "Text reliance (eps error with the opposite motion's caption vs the clip's own, same picture and "
                  "noise; 32 held-out clips; 0 and 50 % when the direction words are ignored):", "",
                  "| t | relative gap | own caption better in |", "|---|---|---|"]
        for t in (999, 950, 900, 800):
            lines.append(f"| {t} | {tr[f'text_gap_t{t}']:+.4f} | {tr[f'text_right_wins_t{t}']:.0%} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="models", help="folder with vae/ and microcinema/ (the pack's)")
    parser.add_argument("--out", default="docs/toy_results")
    parser.add_argument("--sources", default="runs/toy/sources.npz", help="toy-world sources (gathered if missing)")
    parser.add_argument("--count", type=int, default=108, help="videos for the motion/keyframe measures")
    parser.add_argument("--side-count", type=int, default=32, help="videos per setting for speed words and gamma")
    parser.add_argument("--few-steps-count", type=int, default=36,
                        help="held-out videos per setting of the few-steps table (8 settings)")
    parser.add_argument("--sections", default="", help="comma-separated sections to (re)measure, the others kept "
                        "from the last results.json in --out: " + ", ".join(SECTIONS))
    args = parser.parse_args(argv)
    from ..toyworld.sources import load_or_gather

    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sources = load_or_gather(args.sources)
    base, tsr, vae, text = load_bundle(Path(args.models))
    results, t0 = ({"settings": {"steps": STEPS, "cfg": CFG, "gamma": GAMMA, "seed": SEED, "tsr_steps": TOY_TSR_STEPS}},
                   time.perf_counter())

    def keep(name: str, value, shown=None) -> None:
        """Record one section and write the partial results at once (a long run interrupted keeps what it has)."""
        results[name] = value
        print(json.dumps(shown if shown is not None else value), flush=True)
        results["seconds"] = round(time.perf_counter() - t0, 1)
        with atomic_path(out / "results.json") as tmp:
            tmp.write_text(json.dumps(results, indent=1))

    wanted = set(args.sections.split(",")) if args.sections else set(SECTIONS)
    if wanted - set(SECTIONS):
        parser.error(f"--sections: unknown {sorted(wanted - set(SECTIONS))}; choose from {', '.join(SECTIONS)}")
    if args.sections and (out / "results.json").exists():   # the other sections stay as the last run wrote them
        kept = json.loads((out / "results.json").read_text())
        if kept.get("settings") != results["settings"] and wanted != set(SECTIONS):
            kept.setdefault("settings_of_kept_sections", kept.get("settings"))
        results = {**kept, "settings": results["settings"]}
    if "motion_and_keyframe" in wanted:
        main_results, cases, frames = motion_and_keyframe(base, vae, text, sources, args.count)
        keep("motion_and_keyframe", main_results, {k: v for k, v in main_results.items() if k != "records"})
        keep("keyframe_similarity", keyframe_similarity_vs_shuffled(cases, frames))
        keep("sheets", [str(p) for p in sheets(base, tsr, vae, text, cases, frames, out)])
    if "speed_words" in wanted:
        keep("speed_words", speed_words(base, vae, text, sources, args.side_count))
    if "gamma" in wanted:
        keep("gamma", gamma_sweep(base, vae, text, sources, args.side_count, out / "gamma_motion.png"))
    if "text_reliance" in wanted:
        keep("text_reliance", probe_text_reliance(base, vae, text, sources, count=32))
    if "tsr" in wanted:
        keep("tsr", tsr_vs_blend(tsr, vae, text, sources, args.side_count))
    if "few_steps" in wanted:
        keep("few_steps", few_steps(base, vae, text, sources, args.few_steps_count))
    (out / "tables.md").write_text(markdown(results))
    print(f"wrote {out / 'results.json'} in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
