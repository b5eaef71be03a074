#!/usr/bin/env python3
"""Queue a batch of ComfyUI prompts from one API-format workflow on one or several servers, download the results.

Works with any running ComfyUI (``python main.py``) and any API-format workflow (in the ComfyUI menu:
Workflow > Export (API), or "Save (API Format)" on older versions). Standard library and this pack's
``microcinema_core.comfy_http`` client only (no torch, no ComfyUI import).

Overrides pick nodes by class, id or title, then the input by name (an input fed by a link is refused):
    --set KSampler.steps=20            every KSampler node      (value parsed as JSON, else a string)
    --set 12.text="a red car"          node id 12
    --set "Positive Prompt.text=..."   the node titled "Positive Prompt"
    --set *.seed=7                     every node that has an input called seed
Sweeps queue one prompt per value (several sweeps: every combination):
    --sweep MicroCinemaNoisePrior.gamma=-0.01,0,0.02     (or a JSON list: =[0.01, 0.02])
Shortcuts for the usual sweeps:
    --text "a cat" --text "a dog"   the text of the nodes on the sampler's ``positive`` path
    --seed 1 --seed 2               every ``seed`` / ``noise_seed`` input
    --gamma 0 --gamma 0.02          every ``gamma`` input
    --repeat N [--random-seed]      each combination N times (with a fresh random seed each)

Several servers (one ComfyUI per GPU, or per machine): repeat --server. Each server is kept at most
--queue-depth prompts deep (counting other users' prompts there), so a faster or idler server gets more.
A server that stops answering has its prompts sent to the others (it is probed again and rejoins when back);
a prompt one server refuses or fails is tried on another; a server whose failures the others then made
3 times in a row is left out for the rest of the batch.

Resumable: ``OUT/journal.jsonl`` gets one line per job made (which server made it, its files), written as
each is saved; run the same command again and only the jobs missing there (or whose files are gone) are
queued, whichever server made the others. With --random-seed the seeds are kept in it too.

Example:
    python scripts/queue_batch.py workflows/api/image_to_video_api.json \\
        --server http://gpu0:8188 --server http://gpu1:8188 \\
        --text "a boat at sea" --text "a dog running" --gamma 0 --gamma 0.02 --out out/batch
writes ``out/batch/<job>_<file>`` for every output file, ``out/batch/manifest.json`` (every job: status,
server, files, error) and ``out/batch/servers.json`` (per-server throughput, also printed at the end).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import itertools
import json
import os
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python scripts/queue_batch.py): the pack's core is one folder up
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from microcinema_core.atomic import atomic_write  # noqa: E402
from microcinema_core.comfy_http.dispatch import DONE, Dispatcher  # noqa: E402
from microcinema_core.comfy_http.errors import ServerUnreachable  # noqa: E402
from microcinema_core.comfy_http.history import output_files  # noqa: E402
from microcinema_core.comfy_http.journal import Journal  # noqa: E402
from microcinema_core.comfy_http.server_state import throughput_table  # noqa: E402
from microcinema_core.comfy_http.websocket import ProgressListener  # noqa: E402
from microcinema_core.comfy_http.workflow import (SEED_INPUTS, OverrideError, apply_override,  # noqa: E402,F401
                                                  parse_assignment, parse_value, positive_text_nodes,
                                                  select_nodes)

DEFAULT_SERVER = "http://127.0.0.1:8188"


# ---------------------------------------------------------------- the jobs ------------------------------
def parse_sweep_values(raw: str) -> list:
    """``1,2,3`` or a JSON list ``[1, 2, 3]`` -> values."""
    raw = raw.strip()
    if raw.startswith("["):
        values = json.loads(raw)
    else:
        values = [parse_value(v.strip()) for v in raw.split(",")]
    if not values:
        raise OverrideError(f"sweep '{raw}' has no values")
    return values


def positive_text_targets(prompt: dict) -> list[tuple[str, str]]:
    """(node id, text input) of the text nodes on a ``positive`` path (the prompt to vary)."""
    targets = [(nid, name) for nid in positive_text_nodes(prompt)
               for name in ("text", "text_g", "text_l") if isinstance(prompt[nid]["inputs"].get(name), str)]
    if not targets:
        texts = [nid for nid, node in prompt.items() if isinstance(node.get("inputs", {}).get("text"), str)]
        if len(texts) != 1:
            raise OverrideError("--text: no text encoder feeds a 'positive' input; use --sweep <node id>.text=...")
        targets = [(texts[0], "text")]
    return targets


class Sweep:
    """One axis of the batch: the (selector, input) pairs it sets, and its values."""

    def __init__(self, label: str, targets: list[tuple[str, str]], values: list):
        self.label, self.targets, self.values = label, targets, values

    def apply(self, prompt: dict, value) -> None:
        for selector, input_name in self.targets:
            apply_override(prompt, selector, input_name, value)


def build_jobs(workflow: dict, sets: list[str], sweeps: list[Sweep], repeat: int = 1,
               random_seed: bool = False, rng: random.Random | None = None) -> list[tuple[dict, dict]]:
    """Every (prompt, overrides) to queue: the fixed ``--set``s, then each combination of sweep values."""
    base = copy.deepcopy(workflow)
    for spec in sets:
        selector, input_name, raw = parse_assignment(spec)
        apply_override(base, selector, input_name, parse_value(raw))
    rng = rng or random.Random()
    jobs = []
    for combo in itertools.product(*(s.values for s in sweeps)):
        for _ in range(repeat):
            prompt = copy.deepcopy(base)
            overrides = {}
            for sweep, value in zip(sweeps, combo):
                sweep.apply(prompt, value)
                overrides[sweep.label] = value
            if random_seed:
                seed = rng.randrange(2**48)
                for input_name in SEED_INPUTS:
                    for nid in select_nodes(prompt, "*", input_name):
                        prompt[nid]["inputs"][input_name] = seed
                overrides["seed"] = seed
            jobs.append((prompt, overrides))
    return jobs


def job_key(index: int, prompt: dict) -> str:
    """Names a job in the journal: its place in the batch and what it queues."""
    digest = hashlib.sha256(json.dumps(prompt, sort_keys=True).encode()).hexdigest()[:16]
    return f"{index}:{digest}"


# ---------------------------------------------------------------- the batch -----------------------------
def _write_file(path: Path, data: bytes) -> None:
    """Whole or not at all: a batch killed while downloading leaves no half file that looks made."""
    atomic_write(path, data)


def _write_json(path: Path, data) -> None:
    atomic_write(path, json.dumps(data, indent=1))


def _made(out: Path, record: dict | None) -> bool:
    return record is not None and all((out / name).is_file() for name in record["files"])


def _progress_printer(dispatcher: Dispatcher, log):
    def on_event(event: dict) -> None:
        data = event.get("data") or {}
        job = dispatcher.prompt_jobs.get(data.get("prompt_id"))
        if event.get("type") == "progress" and job is not None:
            log(f"  job {job}: node {data.get('node')} {data.get('value')}/{data.get('max')}")
    return on_event


def run_batch(servers, jobs: list[tuple[dict, dict]], out_dir: str, timeout: float = 3600.0,
              progress: bool = True, log=None, depth: int = 2) -> list[dict]:
    """Run every job not in ``OUT/journal.jsonl`` yet over ``servers`` (URLs), download their files;
    returns (and writes) the manifest of every job, and writes ``OUT/servers.json``."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    servers = [servers] if isinstance(servers, str) else list(servers)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    journal = Journal(out / "journal.jsonl")
    keys = [job_key(i, prompt) for i, (prompt, _) in enumerate(jobs)]
    todo = [i for i, key in enumerate(keys) if not _made(out, journal.done.get(key))]
    log(f"{len(jobs)} jobs, {len(jobs) - len(todo)} already made (journal), {len(todo)} to run on "
        f"{len(servers)} server(s)")

    def prepare(i, client):
        return jobs[i][0]

    def collect(i, client, prompt_id, entry, seconds):
        files = []
        for item in output_files(entry):
            name = f"{i:03d}_{os.path.basename(item['filename'])}"
            _write_file(out / name, client.view(item))
            files.append(name)
        journal.add_done({"key": keys[i], "job": i, "overrides": jobs[i][1], "prompt_id": prompt_id,
                          "server": client.url, "files": files, "seconds": round(seconds, 2)})
        log(f"job {i} done on {client.url} in {seconds:.1f} s: {', '.join(files) or 'no files'}")
        return files

    dispatcher = Dispatcher(servers, prepare, collect, depth=depth, job_timeout=timeout, log=log, trace=log)
    listeners = []
    if progress and todo:
        for server in dispatcher.servers:
            listener = ProgressListener(server.url, server.client_id, on_event=_progress_printer(dispatcher, log))
            if listener.connect(timeout=5):
                listeners.append(listener)
    try:
        outcomes = dispatcher.run(todo) if todo else []
    finally:
        for listener in listeners:
            listener.close()
    by_job = dict(zip(todo, outcomes))
    records = []
    for i, (prompt, overrides) in enumerate(jobs):
        made = journal.done.get(keys[i])
        if i in by_job and by_job[i].status != DONE:
            o = by_job[i]
            records.append({"job": i, "overrides": overrides, "prompt_id": o.prompt_id, "status": o.status,
                            "server": o.server, "files": [], "error": o.error, "tried": o.tried})
        else:
            records.append({"job": i, "overrides": overrides, "prompt_id": made["prompt_id"], "status": "done",
                            "server": made["server"], "files": made["files"], "seconds": made["seconds"],
                            "this_run": i in by_job})
    _write_json(out / "manifest.json", records)
    if todo:
        rows = dispatcher.throughput()
        _write_json(out / "servers.json", {"wall_seconds": round(dispatcher.wall_seconds, 2), "servers": rows})
        log("per-server throughput (this run):\n" + throughput_table(rows, dispatcher.wall_seconds))
    return records


def load_workflow(path: str) -> dict:
    with open(path) as f:
        workflow = json.load(f)
    if "nodes" in workflow and "links" in workflow:
        raise SystemExit(f"{path} is a UI-format workflow; export it in API format "
                         "(ComfyUI menu: Workflow > Export (API), or 'Save (API Format)').")
    return workflow


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("workflow", help="API-format workflow JSON")
    parser.add_argument("--server", action="append", default=[], metavar="URL",
                        help=f"a ComfyUI URL; repeat it to spread the batch over several (default {DEFAULT_SERVER})")
    parser.add_argument("--out", default="out/batch",
                        help="folder for the downloaded files, journal.jsonl, manifest.json, servers.json; "
                             "rerun with the same to finish what is missing")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="SEL.input=VALUE")
    parser.add_argument("--sweep", action="append", default=[], metavar="SEL.input=V1,V2,...")
    parser.add_argument("--text", action="append", default=[], help="positive prompt text (repeatable)")
    parser.add_argument("--seed", action="append", default=[], type=int, help="seed (repeatable)")
    parser.add_argument("--gamma", action="append", default=[], type=float, help="noise-prior gamma (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="queue each combination N times")
    parser.add_argument("--random-seed", action="store_true",
                        help="a fresh random seed for every job (kept in the journal, so a rerun resumes)")
    parser.add_argument("--queue-depth", type=int, default=2,
                        help="prompts kept queued on each server at once, counting other users' (default 2)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds one prompt may take from queued to finished before it is given up there")
    parser.add_argument("--no-progress", action="store_true", help="do not follow the servers' websockets")
    parser.add_argument("--dry-run", action="store_true", help="print the prompts, queue nothing")
    args = parser.parse_args(argv)
    servers = args.server or [DEFAULT_SERVER]

    workflow = load_workflow(args.workflow)
    journal = Journal(Path(args.out) / "journal.jsonl")
    rng = None
    if args.random_seed:
        if "random_seed_base" not in journal.plan and not args.dry_run:
            journal.add_plan(random_seed_base=random.randrange(2**32))
        rng = random.Random(journal.plan.get("random_seed_base"))
    try:
        sweeps = []
        for spec in args.sweep:
            selector, input_name, raw = parse_assignment(spec)
            sweeps.append(Sweep(f"{selector}.{input_name}", [(selector, input_name)], parse_sweep_values(raw)))
        if args.text:
            sweeps.append(Sweep("text", positive_text_targets(workflow), args.text))
        if args.seed:
            present = [n for n in SEED_INPUTS if select_nodes(workflow, "*", n)]
            if not present:
                raise OverrideError("--seed: the workflow has no seed or noise_seed input")
            sweeps.append(Sweep("seed", [("*", n) for n in present], args.seed))
        if args.gamma:
            sweeps.append(Sweep("gamma", [("*", "gamma")], args.gamma))
        jobs = build_jobs(workflow, args.sets, sweeps, args.repeat, args.random_seed, rng)
    except OverrideError as err:
        parser.error(str(err))
    if args.dry_run:
        json.dump([{"overrides": o, "prompt": p} for p, o in jobs], sys.stdout, indent=1)
        print()
        return 0
    try:
        records = run_batch(servers, jobs, args.out, args.timeout, progress=not args.no_progress,
                            depth=args.queue_depth)
    except (ServerUnreachable, ValueError) as err:
        print(f"queue_batch: {err}", file=sys.stderr)
        return 2
    done = sum(r["status"] == "done" for r in records)
    print(f"{done}/{len(records)} jobs done; files in {args.out}", file=sys.stderr)
    return 0 if done == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
