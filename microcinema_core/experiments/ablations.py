"""The paper's claims at toy scale: tab. 2 (injection), fig. 6 / sec. 3.3 (noise prior), app. fig. 5 (few steps),
TSR against RIFE and a blend. One command, resumable (each row's training resumes from its last checkpoint,
finished rows and measured settings are kept):

    python -m microcinema_core.experiments.ablations --bundle runs/toy64 --out runs/ablations --budget cpu
    python -m microcinema_core.experiments.ablations ... --report docs/toy_ablations   # + tables and plots

Every row trains a base model FROM SCRATCH on the bundle's base cache (the toy world's training clips) with the
same budget and seed; only the row's setting differs. The budget is fixed in ``BUDGETS`` before any run and
written to ``plan.json`` on the first invocation; a later invocation with a different budget is refused (the
table is not tuned). Rows (``ROWS``): the four injections of tab. 2 at lambda 0.03, and the paper's model
(``add_encdec_spade``) at lambda 0 and 0.1 (fig. 6).

Measured on held-out pictures and phrasings (``probe.heldout_cases``), the sampling settings of the paper's
FVD runs (20 Euler steps here, CFG 5, gamma 0.02) unless a sweep changes one:

* FVD on the real I3D (``eval/fvd.py``) against the TRUE held-out clips of the same cases (9 frames, so not
  comparable with 16-frame FVDs), motion-text agreement (optical-flow class), centre-frame PSNR against the
  keyframe, mean flow magnitude;
* gamma sweep for every lambda row (fig. 6); 5 vs 50 Euler steps with the prior (the row's lambda, gamma 0.02)
  and without it (start from N(0, I)) for the paper's model (app. fig. 5);
* TSR: the bundle's toy TSR vs RIFE with its real pretrained weights (``eval/rife.py``) vs a linear blend (in
  pixels and of the encoded frames), on held-out toy 4x-rate clips and on the real carphone video: PSNR/SSIM of
  the restored frames and temporal consistency (flow-warped error, ``eval/temporal.py``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .toy_files import FILES

ROWS = {
    "concat": dict(injection="concat", noise_prior_lambda=0.03),
    "add_dec": dict(injection="add_dec", noise_prior_lambda=0.03),
    "add_encdec": dict(injection="add_encdec", noise_prior_lambda=0.03),
    "add_encdec_spade": dict(injection="add_encdec_spade", noise_prior_lambda=0.03),   # the paper's model
    "spade_lambda_0": dict(injection="add_encdec_spade", noise_prior_lambda=0.0),
    "spade_lambda_0.1": dict(injection="add_encdec_spade", noise_prior_lambda=0.1),
}
LAMBDA_ROWS = ("spade_lambda_0", "add_encdec_spade", "spade_lambda_0.1")
GAMMAS = (-0.02, 0.0, 0.02, 0.05, 0.1)
STEPS, CFG, GAMMA, SEED = 20, 5.0, 0.02, 0
FEW_STEPS = (5, 50)   # app. fig. 5


@dataclass(frozen=True)
class Budget:
    steps: int                  # training steps per row (from scratch)
    batch: int
    lr: float
    warmup: int
    seed: int
    prediction: str             # the network's parameterisation (models/microcinema.py)
    high_noise_fraction: float  # training/objective.py
    videos: int                 # held-out videos per main measurement
    sweep_videos: int           # per gamma / per step-count setting
    tsr_clips: int              # per TSR source (toy, real)


BUDGETS = {
    # 2 CPU cores: ~10 minutes of training per row at 64 px
    "cpu": Budget(steps=1000, batch=16, lr=5e-4, warmup=100, seed=0, prediction="v", high_noise_fraction=0.5,
                  videos=54, sweep_videos=27, tsr_clips=24),
    # one GPU session
    "gpu": Budget(steps=8000, batch=64, lr=5e-4, warmup=200, seed=0, prediction="v", high_noise_fraction=0.5,
                  videos=216, sweep_videos=108, tsr_clips=64),
    # tests: a few steps of everything
    "smoke": Budget(steps=2, batch=2, lr=5e-4, warmup=1, seed=0, prediction="v", high_noise_fraction=0.5,
                    videos=3, sweep_videos=2, tsr_clips=2),
}


class PlanChanged(RuntimeError):
    pass


def fix_plan(out: Path, budget_name: str, rows: tuple) -> dict:
    """Write ``plan.json`` on the first run; refuse a different budget later (rows may be added)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "plan.json"
    plan = {"budget_name": budget_name, "budget": asdict(BUDGETS[budget_name]),
            "rows": {name: ROWS[name] for name in rows},
            "sampling": {"steps": STEPS, "cfg": CFG, "gamma": GAMMA, "seed": SEED, "gammas": list(GAMMAS),
                         "few_steps": list(FEW_STEPS)}}
    if path.exists():
        stored = json.loads(path.read_text())
        if stored["budget"] != plan["budget"] or stored["sampling"] != plan["sampling"]:
            raise PlanChanged(f"{path} fixes budget {stored['budget_name']!r} {stored['budget']}; this run asks for "
                              f"{budget_name!r} {plan['budget']}. Use another --out folder for another budget.")
        plan["rows"] = {**stored["rows"], **plan["rows"]}
        plan["fixed_at"] = stored.get("fixed_at")
    else:
        plan["fixed_at"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    path.write_text(json.dumps(plan, indent=1))
    return plan


def row_run(name: str, budget: Budget, bundle: Path, out: Path, device: str):
    """The trainer's run of one row: the bundle's cpu recipe, from scratch, with the row's setting and the budget."""
    from .bundle import PROFILES, model_run

    run = model_run("base", PROFILES["cpu"], bundle, budget.seed, device)
    t = run.train
    t.model_overrides.update(injection=ROWS[name]["injection"], prediction=budget.prediction)
    t.noise_prior_lambda = ROWS[name]["noise_prior_lambda"]
    t.max_steps, t.batch_size, t.lr, t.warmup_steps = budget.steps, budget.batch, budget.lr, budget.warmup
    t.high_noise_fraction = budget.high_noise_fraction
    t.max_minutes = None
    # the rows' CPU budget was measured in fp32 (docs/training.md) and stays so on every CPU; a GPU runs bf16
    t.precision = "fp32" if device.startswith("cpu") else "auto"
    t.save_every = max(1, min(500, budget.steps))
    t.output_dir = str(out / name)
    t.export_name = FILES["base"]
    return run


def train_row(name: str, budget: Budget, bundle: Path, out: Path, device: str) -> Path:
    from ..training.trainer import train

    export = out / name / FILES["base"]
    if export.exists():
        return export
    result = train(row_run(name, budget, bundle, out, device), device=device)
    if result.export_path is None:
        raise RuntimeError(f"row {name} stopped before its last step; run the command again to resume")
    return Path(result.export_path)


# ------------------------------------------------------------------------------------------ measuring
class Measurer:
    """Held-out cases, their true clips' I3D features (the FVD reference), and one call per sampling setting."""

    def __init__(self, sources, vae, text, size: int, count: int, sweep_count: int, fvd_model=None):
        from .probe import heldout_cases

        self.vae, self.text, self.size = vae, text, size
        self.cases = heldout_cases(sources, count, seed=2026, size=size)
        self.sweep_cases = self.cases[:sweep_count]
        self.fvd_model = fvd_model
        self._real = {}

    def real_features(self, n: int) -> np.ndarray:
        from ..eval.fvd import i3d_embeddings

        if n not in self._real:
            self._real[n] = i3d_embeddings([c.frames.permute(0, 2, 3, 1) for c in self.cases[:n]], model=self.fvd_model)
        return self._real[n]

    @torch.no_grad()
    def measure(self, model, *, steps: Optional[int] = None, gamma: float = GAMMA, lam: Optional[float] = None,
                sweep: bool = False, seed: int = SEED) -> dict:
        from ..diffusion.pipeline import generate

        steps = STEPS if steps is None else steps
        cases = self.sweep_cases if sweep else self.cases
        keys = torch.stack([c.frames[len(c.frames) // 2] for c in cases])
        n = model.config.num_frames
        frames = []
        for start in range(0, len(cases), 16):
            chunk = cases[start:start + 16]
            z = self.vae.encode(keys[start:start + 16])
            context = self.text([c.caption for c in chunk])
            uncond = self.text([""]).expand_as(context)
            video = generate(model, z, context, uncond, steps=steps, cfg=CFG, gamma=gamma, lam=lam, seed=seed + start)
            frames.append(self.vae.decode(video).view(len(chunk), n, 3, *keys.shape[-2:]).float().clamp(0, 1))
        return {"steps": steps, "gamma": gamma,
                "lambda_at_sampling": float(model.config.noise_prior_lambda if lam is None else lam),
                **self.score(torch.cat(frames), cases)}

    def score(self, frames: torch.Tensor, cases: list) -> dict:
        """FVD against the true clips of ``cases``, agreement, centre-frame PSNR, flow of ``frames`` [B, N, 3, S, S]."""
        from ..eval.flow_motion import classify, video_motion
        from ..eval.fvd import fvd_from_features, i3d_embeddings
        from ..eval.image_metrics import psnr

        n = frames.shape[1]
        keys = torch.stack([c.frames[len(c.frames) // 2] for c in cases])
        motions = [video_motion(f.numpy()) for f in frames]
        fake = i3d_embeddings([f.permute(0, 2, 3, 1) for f in frames], model=self.fvd_model)
        return {"videos": len(cases),
                "fvd": fvd_from_features(fake, self.real_features(len(cases))),
                "agreement": float(np.mean([classify(m) == c.motion for m, c in zip(motions, cases)])),
                "centre_psnr_db": float(psnr(frames[:, n // 2], keys).mean()),
                "mean_flow_px": float(np.mean([m.magnitude for m in motions]))}

    @torch.no_grad()
    def references(self, shipped_base=None, paper_row=None) -> dict:
        """Yardsticks for the rows' FVD on the same cases: the true clips through the VAE (the floor a model
        decoded by this VAE can reach), the keyframe frozen for every frame (no motion at all), when given the
        shipped base (its own, longer training), and the paper's row sampled with another seed (how much a
        row's figures move with the sampling noise alone)."""
        truth = torch.stack([c.frames for c in self.cases])
        keys = truth[:, truth.shape[1] // 2]
        rows = {"vae_roundtrip": self.score(
                    torch.cat([self.vae.decode(self.vae.encode(t)).float().clamp(0, 1)[None] for t in truth]), self.cases),
                "frozen_keyframe": self.score(keys[:, None].expand_as(truth).contiguous(), self.cases)}
        if shipped_base is not None and shipped_base.config.resolution == self.size:
            rows["shipped_base"] = self.measure(shipped_base)
        if paper_row is not None:
            rows["add_encdec_spade_seed_1"] = self.measure(paper_row, seed=SEED + 1)
        return rows


def measure_row(name: str, model, measurer: Measurer) -> dict:
    result = {"main": measurer.measure(model)}
    if name in LAMBDA_ROWS:
        result["gamma_sweep"] = [measurer.measure(model, gamma=g, sweep=True) for g in GAMMAS]
    if name == "add_encdec_spade":
        result["few_steps"] = [measurer.measure(model, steps=s, gamma=g, lam=lam, sweep=True)
                               for s in FEW_STEPS for g, lam in ((GAMMA, None), (0.0, 0.0))]
    return result


# ------------------------------------------------------------------------------------------ TSR
@torch.no_grad()
def tsr_comparison(tsr, vae, text, sources, count: int) -> dict:
    """Restored in-between frames of 4x-rate clips: our TSR, RIFE, a pixel blend, a blend of the encoded frames."""
    from ..diffusion.pipeline import generate
    from ..eval.image_metrics import psnr, ssim
    from ..eval.rife import interpolate, load_rife
    from ..eval.temporal import temporal_consistency
    from .evaluate import _blend, _toy_tsr_clips, real_tsr_clips

    rife = load_rife()
    empty = text([""])
    size = tsr.config.resolution
    results = {}
    for source, clips in (("toy_heldout", _toy_tsr_clips(sources, count, size)),
                          ("real_carphone", real_tsr_clips(sources, count, size))):
        scores = {m: {"psnr": [], "ssim": [], "warp_error": []} for m in ("tsr", "rife", "blend", "latent_blend", "truth")}
        for i, truth in enumerate(clips):
            n = truth.shape[0]
            times = torch.linspace(0, 1, n)[1:-1].tolist()
            ends = vae.encode(truth[[0, -1]])
            video = generate(tsr, ends[None], empty, None, num_frames=n, steps=STEPS, cfg=1.0, gamma=GAMMA, seed=SEED + i)
            middle = {"tsr": vae.decode(video[1:-1]).float().clamp(0, 1),
                      "rife": interpolate(rife, truth[:1], truth[-1:], times)[0],
                      "blend": _blend(truth[0], truth[-1], n),
                      "latent_blend": vae.decode(_blend(ends[0], ends[1], n)).float().clamp(0, 1),
                      "truth": truth[1:-1]}
            for method, frames in middle.items():
                if method != "truth":
                    scores[method]["psnr"].append(float(psnr(frames, truth[1:-1]).mean()))
                    scores[method]["ssim"].append(float(ssim(frames, truth[1:-1]).mean()))
                whole = torch.cat([truth[:1], frames, truth[-1:]])
                scores[method]["warp_error"].append(temporal_consistency(whole.permute(0, 2, 3, 1).numpy()))
        results[source] = {"clips": len(clips), **{m: {k: float(np.mean(v)) for k, v in s.items() if v}
                                                   for m, s in scores.items()}}
    return results


# ------------------------------------------------------------------------------------------ report
def markdown(plan: dict, results: dict) -> str:
    lines = [f"Budget (fixed {plan.get('fixed_at')} before the runs): `{plan['budget_name']}` {plan['budget']}; sampling "
             f"{plan['sampling']}.", ""]
    rows = results.get("rows", {})
    if rows:
        lines += ["| row | injection | lambda | FVD (I3D, 9 frames) | agreement | centre PSNR (dB) | flow (px/frame) |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in rows.items():
            m = r["main"]
            lines.append(f"| {name} | {ROWS[name]['injection']} | {ROWS[name]['noise_prior_lambda']} | {m['fvd']:.1f} | "
                         f"{m['agreement']:.1%} | {m['centre_psnr_db']:.2f} | {m['mean_flow_px']:.2f} |")
        lines.append("")
    refs = results.get("references")
    if refs:
        lines += ["References on the same cases and sampling (not trained under the budget):", "",
                  "| reference | FVD | agreement | centre PSNR (dB) | flow (px/frame) |", "|---|---|---|---|---|"]
        for name, m in refs.items():
            lines.append(f"| {name} | {m['fvd']:.1f} | {m['agreement']:.1%} | {m['centre_psnr_db']:.2f} | "
                         f"{m['mean_flow_px']:.2f} |")
        lines.append("")
    sweeps = [(n, r["gamma_sweep"]) for n, r in rows.items() if "gamma_sweep" in r]
    if sweeps:
        lines += ["Gamma sweep (fig. 6):", "", "| row | gamma | FVD | agreement | centre PSNR | flow |", "|---|---|---|---|---|---|"]
        for name, sweep in sweeps:
            for s in sweep:
                lines.append(f"| {name} | {s['gamma']} | {s['fvd']:.1f} | {s['agreement']:.1%} | "
                             f"{s['centre_psnr_db']:.2f} | {s['mean_flow_px']:.2f} |")
        lines.append("")
    few = rows.get("add_encdec_spade", {}).get("few_steps")
    if few:
        lines += ["Few steps (app. fig. 5), add_encdec_spade:", "", "| Euler steps | prior | FVD | agreement | centre PSNR |",
                  "|---|---|---|---|---|"]
        for s in few:
            prior = "none (N(0, I))" if s["lambda_at_sampling"] == 0 and s["gamma"] == 0 else \
                f"lambda {s['lambda_at_sampling']} + gamma {s['gamma']}"
            lines.append(f"| {s['steps']} | {prior} | {s['fvd']:.1f} | {s['agreement']:.1%} | {s['centre_psnr_db']:.2f} |")
        lines.append("")
    tsr = results.get("tsr")
    if tsr:
        lines += ["TSR (restored in-between frames of 4x-rate clips; warp error: lower is steadier):", "",
                  "| source | method | PSNR (dB) | SSIM | warp error |", "|---|---|---|---|---|"]
        for source, r in tsr.items():
            for method in ("tsr", "rife", "blend", "latent_blend", "truth"):
                s = r[method]
                lines.append(f"| {source} | {method} | {s.get('psnr', float('nan')):.2f} | {s.get('ssim', float('nan')):.3f} | "
                             f"{s['warp_error']:.4f} |")
        lines.append("")
    return "\n".join(lines)


def plot_sweeps(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for name, r in results.get("rows", {}).items():
        if "gamma_sweep" not in r:
            continue
        g = [s["gamma"] for s in r["gamma_sweep"]]
        for ax, key in zip(axes, ("fvd", "mean_flow_px", "centre_psnr_db")):
            ax.plot(g, [s[key] for s in r["gamma_sweep"]], "o-", label=f"lambda {ROWS[name]['noise_prior_lambda']}")
    for ax, label in zip(axes, ("FVD (I3D, 9 frames)", "mean flow (px/frame)", "centre-frame PSNR (dB)")):
        ax.set_xlabel("gamma")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="runs/toy64", help="a toy-bundle run folder (its sources and base cache)")
    parser.add_argument("--out", default="runs/ablations")
    parser.add_argument("--budget", default="cpu", choices=sorted(BUDGETS))
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows (default: all)")
    parser.add_argument("--report", default=None, help="also write tables.md and the sweep plot into this folder")
    parser.add_argument("--skip-tsr", action="store_true")
    parser.add_argument("--shipped-base", default=f"models/microcinema/{FILES['base']}",
                        help="also measure this base as a reference row (skipped when the file is missing)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = tuple(r for r in args.rows.split(",") if r)
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    from ..text.minilm import MiniLMTextEncoder
    from ..vae.taesd_layout import ToyVAE
    from ..weights.checkpoint import load_checkpoint, read_checkpoint_config
    from ..toyworld.sources import load_or_gather

    bundle, out = Path(args.bundle), Path(args.out)
    try:
        plan = fix_plan(out, args.budget, rows)
    except PlanChanged as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    budget = BUDGETS[args.budget]
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"rows": {}}
    sources = load_or_gather(bundle / "sources.npz")
    # the bundle's own VAE (the rows' training clips were encoded with it) and TSR, fp32
    vae, text = ToyVAE.load(bundle / "vae" / "vae.safetensors"), MiniLMTextEncoder()
    measurer = None
    for name in rows:
        started = time.perf_counter()
        path = train_row(name, budget, bundle, out, args.device)
        if name in results["rows"]:
            continue
        model = load_checkpoint(path, dtype="fp32").eval()
        if measurer is None:
            measurer = Measurer(sources, vae, text, model.config.resolution, budget.videos, budget.sweep_videos)
        results["rows"][name] = {**measure_row(name, model, measurer), "checkpoint": str(path),
                                 "seconds_train_and_measure": round(time.perf_counter() - started, 1)}
        results_path.write_text(json.dumps(results, indent=1))
        print(f"[ablations] {name}: {json.dumps(results['rows'][name]['main'])}", flush=True)
    if "references" not in results and results["rows"]:
        shipped = Path(args.shipped_base) if args.shipped_base else None
        shipped_model = load_checkpoint(shipped, dtype="fp32").eval() if shipped and shipped.exists() else None
        if measurer is None:
            first_row = next(iter(results["rows"].values()))
            size = read_checkpoint_config(first_row["checkpoint"]).resolution   # metadata only, no weights
            measurer = Measurer(sources, vae, text, size, budget.videos, budget.sweep_videos)
        paper = results["rows"].get("add_encdec_spade")
        paper_model = load_checkpoint(paper["checkpoint"], dtype="fp32").eval() if paper else None
        results["references"] = measurer.references(shipped_model, paper_model)
        if "shipped_base" in results["references"]:
            results["references"]["shipped_base"]["file"] = str(shipped)
        results_path.write_text(json.dumps(results, indent=1))
        print(f"[ablations] references: {json.dumps(results['references'])}", flush=True)
    if not args.skip_tsr and "tsr" not in results:
        tsr = load_checkpoint(bundle / "tsr" / FILES["tsr"], dtype="fp32").eval()
        results["tsr"] = tsr_comparison(tsr, vae, text, sources, budget.tsr_clips)
        results_path.write_text(json.dumps(results, indent=1))
        print(f"[ablations] tsr: {json.dumps(results['tsr'])}", flush=True)
    if args.report:
        report = Path(args.report)
        report.mkdir(parents=True, exist_ok=True)
        (report / "results.json").write_text(json.dumps({"plan": plan, **results}, indent=1))
        (report / "tables.md").write_text(markdown(plan, results))
        plot_sweeps(results, report / "gamma_sweeps.png")
        print(f"[ablations] wrote {report / 'tables.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
