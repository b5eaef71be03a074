"""The paper's zero-shot protocol as a command (sec. 4: UCF-101 class-name prompts, or MSR-VTT-style captions).

    python -m microcinema_core.eval.zero_shot --server http://127.0.0.1:8188 \\
        --workflow workflows/api/sdxl_keyframe_to_video_api.json --prompts ucf101 --videos-per-prompt 20 \\
        --real /data/ucf101_clips --out runs/zero_shot

1. **Prompts**: the 101 UCF-101 class names (``--prompts ucf101``, optionally ``--template "a person {}"``) or
   one caption per line of a text file (``--prompts captions.txt``); each prompt ``--videos-per-prompt`` times,
   seed ``--seed + clip index``, ``--limit`` clips at most (classes first, then repeats).
2. **Generation** on one or several running ComfyUI servers (``--server`` repeated: the clips are spread by
   free capacity, a server that dies or keeps failing has its clips made by the others), through the HTTP API
   only: the API-format workflow is the user's own graph (keyframe by their text-to-image nodes, video by
   ours; the shipped SDXL keyframe workflow is one). For each clip the prompt text goes into every text node
   on a sampler's positive path, the seed into every seed input, ``--set NODE.input=value`` overrides apply,
   and a Save Image node is attached to the keyframe input so the keyframe comes back with the video.
   ``--keyframes DIR`` uses files instead (``<label>.png`` or ``<prompt slug>.png``, e.g. Midjourney/DALL-E
   images), uploaded into the Load Image node feeding the keyframe on the server that makes the clip.
   ``--queue-depth`` prompts are kept queued on each server at once.
3. **Resumable**: each finished clip is ``OUT/clips/<name>.<ext>`` + ``<name>_keyframe.png`` + ``<name>.json``
   (written last, naming the server that made it); a rerun skips clips that have their record, whichever
   server made them, measures included.
   The report gives each server's throughput (clips, clips per minute, seconds per clip).
4. **Measures** per clip (``microcinema_core.eval``): motion amplitude and class (Farneback flow), temporal
   consistency (flow-warped frame error), MobileNetV2 feature similarity to the keyframe and frame to frame,
   PSNR/SSIM of the centre frame against the keyframe; with ``--clip-model`` CLIPSIM, with ``--c3d-model`` IS.
5. **FVD** (real I3D) against ``--real`` (video files or folders of frames), on the first ``--fvd-frames``
   frames of each clip.
6. **Report**: ``OUT/report.json``, ``OUT/report.md`` and ``OUT/plots/*.png``.

No ComfyUI import anywhere: the server may be any ComfyUI version, on this machine or another.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..comfy_http import history
from ..comfy_http.dispatch import DONE, Dispatcher
from ..comfy_http.errors import ComfyError
from ..comfy_http.server_state import throughput_table
from ..comfy_http.workflow import KEYFRAME_SAVE_NODE, Workflow
from .prompts import caption_prompts, slug, ucf101_prompts
from .video_io import list_clips, read_video

ALL_MEASURES = ("motion", "temporal", "mobilenet", "fidelity")
DEFAULT_SERVER = "http://127.0.0.1:8188"
UNAVAILABLE = {
    "IS": "Inception Score needs a C3D classifier trained on UCF-101; no such weights are on the package "
          "registries. Pass your own with --c3d-model FILE.safetensors (see docs/evaluation.md).",
    "CLIPSIM": "CLIPSIM needs CLIP weights (none on the registries). Pass a Hugging Face CLIP folder with "
               "--clip-model DIR.",
}


# ------------------------------------------------------------------------------------------ the plan
def build_jobs(prompts: list, videos_per_prompt: int = 1, seed: int = 0, limit: int | None = None) -> list:
    jobs = []
    for rep in range(videos_per_prompt):
        for label, text in prompts:
            index = len(jobs)
            jobs.append({"index": index, "label": label, "prompt": text, "seed": seed + index,
                         "name": f"{index:05d}_{slug(label, 32)}"})
    return jobs[:limit] if limit else jobs


class Progress:
    """A one-line progress bar on stderr (done/total, rate, time left)."""

    def __init__(self, total: int, label: str, stream=None, width: int = 30):
        self.total, self.label, self.width = max(total, 1), label, width
        self.stream = stream or sys.stderr
        self.done, self.start = 0, time.monotonic()

    def update(self, n: int = 1, note: str = ""):
        self.done += n
        elapsed = time.monotonic() - self.start
        left = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        filled = int(self.width * self.done / self.total)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}"
                          f" {elapsed:.0f}s elapsed, ~{left:.0f}s left {note[:40]:<40}")
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _record_path(out: Path, job: dict) -> Path:
    return out / "clips" / f"{job['name']}.json"


def finished(out: Path, job: dict) -> dict | None:
    path = _record_path(out, job)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if record.get("prompt") != job["prompt"] or record.get("seed") != job["seed"]:
        raise SystemExit(f"{path} was made for prompt {record.get('prompt')!r} seed {record.get('seed')}, not "
                         f"{job['prompt']!r} seed {job['seed']}: use a new --out for a different plan")
    return record


def _write_json(path: Path, data) -> None:
    atomic_write(path, json.dumps(data, indent=1))


def _keyframe_file(folder: Path, job: dict) -> Path:
    for stem in (job["label"], slug(job["prompt"]), job["name"]):
        for ext in (".png", ".jpg", ".jpeg", ".webp"):
            if (folder / f"{stem}{ext}").is_file():
                return folder / f"{stem}{ext}"
    raise SystemExit(f"--keyframes {folder}: no keyframe for {job['prompt']!r} "
                     f"(expected {job['label']}.png or {slug(job['prompt'])}.png)")


# ------------------------------------------------------------------------------------------ generation
def prepare_prompt(workflow: Workflow, job: dict, text_nodes: list | None, overrides: list,
                   keyframe_name: str | None) -> dict:
    wf = workflow.with_text(job["prompt"], text_nodes).with_seed(job["seed"])
    for spec in overrides:
        wf = wf.with_override(spec)
    if keyframe_name:
        wf = wf.with_keyframe_file(keyframe_name)
    wf = wf.with_keyframe_saved(f"zero_shot/{job['name']}_keyframe").with_video_prefix(f"zero_shot/{job['name']}")
    return wf.graph


def _save_outputs(server, entry: dict, out: Path, job: dict) -> dict:
    items = history.outputs_by_node(entry)
    clips = out / "clips"
    files = {}
    key_items = items.pop(KEYFRAME_SAVE_NODE, [])
    if key_items:
        (clips / f"{job['name']}_keyframe.png").write_bytes(server.view(key_items[0]))
        files["keyframe"] = f"{job['name']}_keyframe.png"
    videos = [i for its in items.values() for i in its if history.is_video(i)]
    if videos:
        ext = Path(videos[0]["filename"]).suffix.lower()
        (clips / f"{job['name']}{ext}").write_bytes(server.view(videos[0]))
        files["video"] = f"{job['name']}{ext}"
    else:  # a graph that saves the frames as images: the node with the most images is the video
        frames = max(items.values(), key=len, default=[])
        if len(frames) < 2:
            raise ComfyError(f"clip {job['name']}: the workflow returned no video file and no frames "
                                       f"(outputs: {list(items)}); end it with a video save node")
        folder = clips / job["name"]
        folder.mkdir(exist_ok=True)
        for i, item in enumerate(frames):
            (folder / f"{i:05d}.png").write_bytes(server.view(item))
        files["video"] = job["name"]
    return files


def generate(servers, workflow, jobs: list, out: Path, text_nodes=None, overrides=(),
             keyframes: Path | None = None, queue_depth: int = 2, timeout: float = 900.0, log=print) -> dict:
    """Make every unfinished job on ``servers`` (URLs or clients; one URL is fine), ``queue_depth`` prompts
    queued on each, download its files, write its record. Raises ``ComfyError`` when clips could not be made
    (the finished ones are kept)."""
    (out / "clips").mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs if finished(out, j) is None]
    skipped = len(jobs) - len(todo)
    log(f"{len(jobs)} clips planned, {skipped} already finished, {len(todo)} to generate")
    if not todo:
        return {"generated": 0, "skipped": skipped}
    servers = [servers] if isinstance(servers, str) or not isinstance(servers, (list, tuple)) else list(servers)
    bar = Progress(len(todo), "generate")

    def prepare(job, client):
        name = None
        if keyframes is not None:
            name = client.upload_image(_keyframe_file(keyframes, job), f"zero_shot_{job['name']}.png")
        return prepare_prompt(workflow, job, text_nodes, list(overrides), name)

    def collect(job, client, prompt_id, entry, seconds):
        files = _save_outputs(client, entry, out, job)
        _write_json(_record_path(out, job), {**job, "prompt_id": prompt_id, "server": client.url, "files": files,
                                            "seconds_since_queued": round(seconds, 2)})
        bar.update(1, job["prompt"])

    dispatcher = Dispatcher(servers, prepare, collect, depth=queue_depth, job_timeout=timeout,
                            log=lambda msg: log(f"\n{msg}"))
    outcomes = dispatcher.run(todo)
    rows = dispatcher.throughput()
    log("per-server throughput:\n" + throughput_table(rows, dispatcher.wall_seconds))
    result = {"generated": sum(o.status == DONE for o in outcomes), "skipped": skipped, "servers": rows,
              "generate_wall_seconds": round(dispatcher.wall_seconds, 1)}
    missing = [(job, o) for job, o in zip(todo, outcomes) if o.status != DONE]
    if missing:
        raise ComfyError(f"{len(missing)} of {len(todo)} clips not made: " + "; ".join(
            f"{job['name']}: {o.status} ({(o.error or '')[:300]})" for job, o in missing[:5]))
    return result


# ------------------------------------------------------------------------------------------ measures
class Networks:
    """The networks measures need, loaded once on first use."""

    def __init__(self, device="cpu", clip_model=None, c3d_model=None):
        self.device, self.clip_path, self.c3d_path = device, clip_model, c3d_model
        self._mobilenet = self._i3d = self._clip = self._c3d = None

    @property
    def mobilenet(self):
        if self._mobilenet is None:
            from .mobilenet import load_mobilenet_v2

            self._mobilenet = load_mobilenet_v2(device=self.device)
        return self._mobilenet

    @property
    def i3d(self):
        if self._i3d is None:
            from .i3d import load_i3d

            self._i3d = load_i3d(device=self.device)
        return self._i3d

    @property
    def clip(self):
        if self._clip is None and self.clip_path:
            from .external import load_clip

            self._clip = load_clip(self.clip_path, device=self.device)
        return self._clip

    @property
    def c3d(self):
        if self._c3d is None and self.c3d_path:
            from .external import load_c3d

            self._c3d = load_c3d(self.c3d_path, device=self.device)
        return self._c3d


def _resize(image: np.ndarray, hw: tuple) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).convert("RGB").resize((hw[1], hw[0]), Image.BICUBIC))


def measure_clip(frames: np.ndarray, keyframe: np.ndarray | None, prompt: str, nets: Networks,
                 which=ALL_MEASURES) -> dict:
    """Per-video measures of one clip (``[T, H, W, 3]`` uint8) and its keyframe (any size, or None)."""
    import torch

    m = {"frames": int(len(frames)), "height": int(frames.shape[1]), "width": int(frames.shape[2]),
         "measured": sorted(set(which) | ({"clipsim"} if nets.clip_path else set()))}
    if "motion" in which:
        from .flow_motion import classify, video_motion

        motion = video_motion(frames)
        m["motion_px_per_frame"] = motion.magnitude
        m["motion_fraction_of_size"] = motion.magnitude / motion.size
        m["motion_class"] = classify(motion)
    if "temporal" in which:
        from .temporal import warp_errors

        tc = warp_errors(frames)
        m["warp_error"] = tc.warp_error
        m["warp_valid_fraction"] = tc.valid_fraction
    if "mobilenet" in which:
        from .mobilenet import cosine, frame_features

        feats = frame_features(frames, nets.mobilenet)
        f2f = cosine(feats[:-1], feats[1:]).numpy()
        m["mobilenet_frame_to_frame"] = float(f2f.mean())
        if keyframe is not None:
            key = frame_features(keyframe[None], nets.mobilenet)
            sims = cosine(feats, key).numpy()
            m["mobilenet_keyframe_similarity"] = float(sims.mean())
            m["mobilenet_keyframe_similarity_per_frame"] = [round(float(s), 5) for s in sims]
    if "fidelity" in which and keyframe is not None:
        from .image_metrics import psnr, ssim

        centre = frames[(len(frames) - 1) // 2]
        key = _resize(keyframe, centre.shape[:2])
        a = torch.from_numpy(centre).permute(2, 0, 1)[None].float() / 255
        b = torch.from_numpy(key.copy()).permute(2, 0, 1)[None].float() / 255
        m["centre_psnr_vs_keyframe"] = float(psnr(a, b)[0])
        if min(centre.shape[:2]) >= 11:
            m["centre_ssim_vs_keyframe"] = float(ssim(a, b)[0])
    if nets.clip_path:
        from .external import clipsim

        m["clipsim"] = clipsim(frames, prompt, nets.clip)
    return m


def load_clip_files(out: Path, record: dict) -> tuple:
    clips = out / "clips"
    frames = read_video(clips / record["files"]["video"])
    keyframe = None
    if record["files"].get("keyframe"):
        from PIL import Image

        keyframe = np.asarray(Image.open(clips / record["files"]["keyframe"]).convert("RGB"))
    return frames, keyframe


def measure_all(out: Path, jobs: list, nets: Networks, which=ALL_MEASURES, log=print) -> list:
    """Measures of every finished clip, cached in its record (a rerun measures only what is new)."""
    records = [r for r in (finished(out, j) for j in jobs) if r is not None]
    wanted = set(which) | ({"clipsim"} if nets.clip_path else set())
    todo = [r for r in records if not wanted <= set(r.get("measures", {}).get("measured", []))]
    if todo:
        bar = Progress(len(todo), "measure ")
        for record in todo:
            frames, keyframe = load_clip_files(out, record)
            record["measures"] = measure_clip(frames, keyframe, record["prompt"], nets, which)
            _write_json(out / "clips" / f"{record['name']}.json", record)
            bar.update(1, record["prompt"])
    log(f"measured {len(todo)} clips ({len(records) - len(todo)} from earlier runs)")
    return records


def _embedding(path: Path, load, nets: Networks) -> np.ndarray:
    if path.is_file():
        return np.load(path)
    from .fvd import i3d_embeddings

    emb = i3d_embeddings([load()], model=nets.i3d)[0]
    np.save(path, emb)
    return emb


def compute_fvd(out: Path, records: list, real: Path, frames: int, stride: int, nets: Networks, log=print) -> dict:
    """FVD (real I3D) of the generated clips against the real clips; embeddings cached under OUT."""
    from .fvd import fvd_from_features

    cache = out / "i3d_cache"
    cache.mkdir(exist_ok=True)
    result = {"frames": frames, "real_folder": str(real), "real_stride": stride, "skipped": []}
    gen, real_emb = [], []
    bar = Progress(len(records), "fvd gen ")
    for record in records:
        path = out / "clips" / record["files"]["video"]
        video = read_video(path, max_frames=frames)
        if len(video) < frames:
            result["skipped"].append(f"generated {record['name']}: {len(video)} frames < {frames}")
        else:
            gen.append(_embedding(cache / f"gen_{record['name']}_{frames}.npy", lambda: video, nets))
        bar.update(1)
    clips = list_clips(real)
    bar = Progress(len(clips), "fvd real")
    for clip in clips:
        video = read_video(clip, max_frames=frames, stride=stride)
        if len(video) < frames:
            result["skipped"].append(f"real {clip.name}: {len(video)} frames < {frames}")
        else:
            key = slug(str(clip.resolve()), 120)
            real_emb.append(_embedding(cache / f"real_{key}_{frames}_{stride}.npy", lambda: video, nets))
        bar.update(1)
    result["n_generated"], result["n_real"] = len(gen), len(real_emb)
    if len(gen) < 2 or len(real_emb) < 2:
        result["fvd"] = None
        result["why_none"] = f"FVD needs at least 2 clips per set (generated {len(gen)}, real {len(real_emb)})"
    else:
        result["fvd"] = fvd_from_features(np.stack(real_emb), np.stack(gen))
    log(f"FVD: {result['fvd']} ({len(gen)} generated vs {len(real_emb)} real clips, {frames} frames)")
    return result


# ------------------------------------------------------------------------------------------ report
SUMMARY_KEYS = ("motion_px_per_frame", "motion_fraction_of_size", "warp_error", "mobilenet_keyframe_similarity",
                "mobilenet_frame_to_frame", "centre_psnr_vs_keyframe", "centre_ssim_vs_keyframe", "clipsim")
DIRECTION = {"warp_error": "lower is steadier", "mobilenet_keyframe_similarity": "higher keeps the keyframe",
             "mobilenet_frame_to_frame": "higher is steadier", "centre_psnr_vs_keyframe": "higher keeps the keyframe",
             "centre_ssim_vs_keyframe": "higher keeps the keyframe", "clipsim": "higher matches the text",
             "motion_px_per_frame": "amplitude", "motion_fraction_of_size": "amplitude"}


def summarise(records: list) -> dict:
    summary = {}
    for key in SUMMARY_KEYS:
        values = [r["measures"][key] for r in records if key in r.get("measures", {})]
        if values:
            v = np.asarray(values, dtype=np.float64)
            summary[key] = {"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v)),
                            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}
    classes = [r["measures"]["motion_class"] for r in records if "motion_class" in r.get("measures", {})]
    if classes:
        summary["motion_class_counts"] = {c: classes.count(c) for c in sorted(set(classes))}
    return summary


def make_plots(out: Path, records: list) -> list:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    written = []
    keys = [k for k in SUMMARY_KEYS if any(k in r.get("measures", {}) for r in records)]
    if keys:
        cols = min(3, len(keys))
        rows = math.ceil(len(keys) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
        for ax, key in zip(axes.flat, keys):
            values = [r["measures"][key] for r in records if key in r["measures"]]
            ax.hist(values, bins=max(5, min(30, len(values))), color="#4477aa")
            ax.set_title(key, fontsize=9)
            ax.set_xlabel(DIRECTION.get(key, ""), fontsize=8)
        for ax in list(axes.flat)[len(keys):]:
            ax.axis("off")
        fig.suptitle(f"per-video measures ({len(records)} clips)")
        fig.tight_layout()
        fig.savefig(plots / "measures.png", dpi=80)
        plt.close(fig)
        written.append("plots/measures.png")
    curves = [r["measures"]["mobilenet_keyframe_similarity_per_frame"] for r in records
              if "mobilenet_keyframe_similarity_per_frame" in r.get("measures", {})]
    if curves:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for c in curves:
            ax.plot(c, color="#bbbbbb", lw=0.8)
        length = min(len(c) for c in curves)
        ax.plot(np.mean([c[:length] for c in curves], axis=0), color="#cc3311", lw=2, label="mean")
        ax.set_xlabel("frame")
        ax.set_ylabel("cosine to keyframe (MobileNetV2)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(plots / "keyframe_similarity.png", dpi=80)
        plt.close(fig)
        written.append("plots/keyframe_similarity.png")
    return written


def write_report(out: Path, config: dict, records: list, fvd_result: dict | None, run: dict) -> dict:
    plots = make_plots(out, records)
    unavailable = {k: v for k, v in UNAVAILABLE.items()
                   if not (k == "CLIPSIM" and config.get("clip_model")) and not (k == "IS" and config.get("c3d_model"))}
    report = {"config": config, "run": run, "n_clips": len(records), "fvd": fvd_result,
              "summary": summarise(records), "inception_score": run.get("inception_score"),
              "not_measured": unavailable, "plots": plots,
              "clips": [{k: r[k] for k in ("index", "label", "prompt", "seed", "name", "files", "measures") if k in r}
                        for r in records]}
    _write_json(out / "report.json", report)
    lines = ["# Zero-shot evaluation", "",
             f"- workflow: `{config['workflow']}`; server(s): "
             + ", ".join(f"`{u}`" for u in _as_list(config["server"])),
             f"- prompts: {config['prompts']} ({run['n_prompts']} prompts, {config['videos_per_prompt']} per prompt, "
             f"{len(records)} clips finished of {run['n_planned']} planned)",
             f"- this run generated {run.get('generated', 0)} clips, skipped {run.get('skipped', 0)} finished ones", ""]
    if run.get("servers"):
        lines += ["Per-server throughput (this run):", "",
                  throughput_table(run["servers"], run.get("generate_wall_seconds", 0.0)), ""]
    if fvd_result:
        if fvd_result.get("fvd") is not None:
            lines.append(f"**FVD {fvd_result['fvd']:.2f}** (real I3D; {fvd_result['n_generated']} generated vs "
                         f"{fvd_result['n_real']} real clips, first {fvd_result['frames']} frames). FVD grows as sets "
                         "shrink: compare only at equal set sizes (the paper: 10K clips, 2K for ablations).")
        else:
            lines.append(f"FVD not computed: {fvd_result.get('why_none')}")
        for s in fvd_result.get("skipped", []):
            lines.append(f"- skipped: {s}")
        lines.append("")
    if report["inception_score"]:
        s = report["inception_score"]
        lines += [f"**IS {s['mean']:.2f} +- {s['std']:.2f}** (C3D from `{config['c3d_model']}`, {s['splits']} splits)", ""]
    lines += ["| measure | mean | std | median | n | |", "|---|---|---|---|---|---|"]
    for key, s in report["summary"].items():
        if key == "motion_class_counts":
            continue
        lines.append(f"| {key} | {s['mean']:.4g} | {s['std']:.3g} | {s['median']:.4g} | {s['n']} | "
                     f"{DIRECTION.get(key, '')} |")
    if "motion_class_counts" in report["summary"]:
        lines += ["", "Motion classes (flow): " + ", ".join(f"{k} {v}" for k, v in
                                                              report["summary"]["motion_class_counts"].items())]
    if unavailable:
        lines += ["", "Not measured:"] + [f"- **{k}**: {v}" for k, v in unavailable.items()]
    lines += [""] + [f"![{p}]({p})" for p in plots]
    lines += ["", "| clip | prompt | seed | warp error | keyframe sim. | motion px/frame |", "|---|---|---|---|---|---|"]
    for r in records:
        m = r.get("measures", {})

        def fmt(key):
            return f"{m[key]:.4g}" if key in m else "-"

        lines.append(f"| {r['name']} | {r['prompt']} | {r['seed']} | {fmt('warp_error')} | "
                     f"{fmt('mobilenet_keyframe_similarity')} | {fmt('motion_px_per_frame')} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return report


# ------------------------------------------------------------------------------------------ command
def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m microcinema_core.eval.zero_shot", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", action="append", metavar="URL",
                   help=f"a running ComfyUI; repeat it to spread the clips over several servers: each is kept "
                        f"--queue-depth prompts deep, a dead or failing one's clips go to the others "
                        f"(default {DEFAULT_SERVER})")
    p.add_argument("--workflow", help="API-format workflow: text -> keyframe -> video (e.g. "
                                      "workflows/api/sdxl_keyframe_to_video_api.json)")
    p.add_argument("--prompts", default="ucf101", help="'ucf101' (the 101 class names) or a captions file")
    p.add_argument("--template", default="{}", help="UCF-101 prompt template, {} = class words (default: the name)")
    p.add_argument("--videos-per-prompt", type=int, default=1)
    p.add_argument("--limit", type=int, help="at most this many clips (classes first, then repeats)")
    p.add_argument("--seed", type=int, default=0, help="clip i uses seed + i")
    p.add_argument("--text-node", action="append", help="node id(s) that get the prompt (default: found)")
    p.add_argument("--set", action="append", default=[], metavar="NODE.input=value", help="override an input")
    p.add_argument("--keyframes", type=Path, help="folder of keyframe images (<label>.png) instead of the graph's")
    p.add_argument("--queue-depth", type=int, default=2,
                   help="prompts queued on each server at once, counting other users' (default 2)")
    p.add_argument("--timeout", type=float, default=1800,
                   help="seconds one clip may take from queued to finished on a server, before another tries it")
    p.add_argument("--out", type=Path, required=True, help="output folder (rerun with the same to resume)")
    p.add_argument("--real", type=Path, help="folder of real clips (video files or folders of frames) for FVD")
    p.add_argument("--fvd-frames", type=int, default=16, help="frames per clip for FVD (paper: 16)")
    p.add_argument("--real-stride", type=int, default=1, help="take every n-th frame of the real clips")
    p.add_argument("--measures", default=",".join(ALL_MEASURES), help=f"subset of {','.join(ALL_MEASURES)}, or none")
    p.add_argument("--clip-model", type=Path, help="Hugging Face CLIP folder (config.json, weights, tokenizer): CLIPSIM")
    p.add_argument("--c3d-model", type=Path, help="C3D UCF-101 classifier (.safetensors): Inception Score")
    p.add_argument("--no-generate", action="store_true", help="only measure and report what OUT holds")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    args.server = args.server or [DEFAULT_SERVER]
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    which = tuple(m for m in args.measures.split(",") if m and m != "none")
    bad = [m for m in which if m not in ALL_MEASURES]
    if bad:
        raise SystemExit(f"--measures: unknown {bad}; choose from {ALL_MEASURES}")
    for flag, path in (("--clip-model", args.clip_model), ("--c3d-model", args.c3d_model)):
        if path is not None and not path.exists():
            raise SystemExit(f"{flag} {path}: no such file or folder ({UNAVAILABLE['CLIPSIM' if flag == '--clip-model' else 'IS']})")
    if args.real is not None and not args.real.is_dir():
        raise SystemExit(f"--real {args.real}: not a folder of real clips")
    prompts = ucf101_prompts(args.template) if args.prompts == "ucf101" else caption_prompts(args.prompts)
    jobs = build_jobs(prompts, args.videos_per_prompt, args.seed, args.limit)
    out = args.out
    (out / "clips").mkdir(parents=True, exist_ok=True)
    run = {"n_prompts": len(prompts), "n_planned": len(jobs)}
    if not args.no_generate:
        if not args.workflow:
            raise SystemExit("--workflow is needed to generate (or --no-generate to report on OUT)")
        workflow = Workflow.load(args.workflow)
        text_nodes = args.text_node or workflow.positive_text_nodes()
        if not text_nodes:
            raise SystemExit(f"{args.workflow}: no prompt node found on a sampler's positive path; name it with "
                             "--text-node ID")
        if args.keyframes is None and not workflow.keyframe_links():
            log("note: the workflow has no 'keyframe' input; no keyframe will be kept (keyframe measures skipped)")
        t0 = time.monotonic()
        try:
            run.update(generate(args.server, workflow, jobs, out, text_nodes, args.set, args.keyframes,
                                args.queue_depth, args.timeout, log))
        except (ComfyError, ValueError) as err:
            raise SystemExit(f"generation stopped: {err}\nfinished clips are kept in {out}/clips; rerun to resume")
        run["generate_seconds"] = round(time.monotonic() - t0, 1)
    nets = Networks(args.device, args.clip_model, args.c3d_model)
    t0 = time.monotonic()
    records = measure_all(out, jobs, nets, which, log)
    run["measure_seconds"] = round(time.monotonic() - t0, 1)
    fvd_result = None
    if args.real is not None:
        t0 = time.monotonic()
        fvd_result = compute_fvd(out, records, args.real, args.fvd_frames, args.real_stride, nets, log)
        run["fvd_seconds"] = round(time.monotonic() - t0, 1)
    if args.c3d_model and records:
        from .external import inception_score

        videos = [load_clip_files(out, r)[0] for r in records]
        run["inception_score"] = inception_score(videos, nets.c3d)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    report = write_report(out, config, records, fvd_result, run)
    log(f"report: {out / 'report.md'} and {out / 'report.json'}")
    return report


if __name__ == "__main__":
    main()
