#!/usr/bin/env python3
"""Queue a batch of ComfyUI prompts from one API-format workflow, follow them, download the results.

Standard library only. Works with any running ComfyUI (``python main.py``) and any API-format workflow
(in the ComfyUI menu: Workflow > Export (API), or "Save (API Format)" on older versions).

Overrides pick nodes by class, id or title, then the input by name:
    --set KSampler.steps=20            every KSampler node      (value parsed as JSON, else a string)
    --set 12.text="a red car"          node id 12
    --set "Positive Prompt.text=..."   the node titled "Positive Prompt"
    --set *.seed=7                     every node that has an input called seed
Sweeps queue one prompt per value (several sweeps: every combination):
    --sweep MicroCinemaNoisePrior.gamma=-0.01,0,0.02     (or a JSON list: =[0.01, 0.02])
Shortcuts for the usual sweeps:
    --text "a cat" --text "a dog"   the text of the node feeding the sampler's ``positive`` input
    --seed 1 --seed 2               every ``seed`` / ``noise_seed`` input
    --gamma 0 --gamma 0.02          every ``gamma`` input
    --repeat N [--random-seed]      each combination N times (with a fresh random seed each)

Example:
    python scripts/queue_batch.py workflows/api/image_to_video_api.json --server http://127.0.0.1:8188 \\
        --text "a boat at sea" --text "a dog running" --gamma 0 --gamma 0.02 --out out/batch
writes ``out/batch/<job>_<file>`` for every output file and ``out/batch/manifest.json``.
"""
from __future__ import annotations

import argparse
import base64
import copy
import itertools
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

SEED_INPUTS = ("seed", "noise_seed")


# ---------------------------------------------------------------- overrides ---------------------------
class OverrideError(ValueError):
    """An override names no node or input of the workflow."""


def parse_value(text: str):
    """JSON when it parses (numbers, true/false, null, lists, quoted strings), else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignment(spec: str) -> tuple[str, str, str]:
    """``SEL.input=value`` -> (selector, input, raw value). The selector may contain dots and spaces."""
    if "=" not in spec:
        raise OverrideError(f"'{spec}': expected SELECTOR.input=value")
    target, raw = spec.split("=", 1)
    if "." not in target:
        raise OverrideError(f"'{spec}': expected SELECTOR.input=value (e.g. KSampler.seed=5)")
    selector, input_name = target.rsplit(".", 1)
    return selector.strip(), input_name.strip(), raw


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


def select_nodes(prompt: dict, selector: str, input_name: str) -> list[str]:
    """Ids of the nodes a selector names: ``*`` (nodes having ``input_name``), an id, a class or a title."""
    if selector == "*":
        return [nid for nid, node in prompt.items() if input_name in node.get("inputs", {})]
    if selector.lstrip("#") in prompt:
        return [selector.lstrip("#")]
    by_class = [nid for nid, node in prompt.items() if node.get("class_type") == selector]
    if by_class:
        return by_class
    return [nid for nid, node in prompt.items() if node.get("_meta", {}).get("title") == selector]


def apply_override(prompt: dict, selector: str, input_name: str, value) -> list[str]:
    """Set ``input_name`` on every node the selector names; returns their ids (raises if none)."""
    ids = select_nodes(prompt, selector, input_name)
    if not ids:
        classes = sorted({n.get("class_type", "?") for n in prompt.values()})
        raise OverrideError(f"no node matches '{selector}.{input_name}'; node classes here: {', '.join(classes)}")
    for nid in ids:
        current = prompt[nid].setdefault("inputs", {}).get(input_name)
        if isinstance(current, list) and len(current) == 2 and isinstance(current[1], int):
            raise OverrideError(f"node {nid} ({prompt[nid]['class_type']}).{input_name} is a link, not a value")
        prompt[nid]["inputs"][input_name] = value
    return ids


def positive_text_targets(prompt: dict) -> list[tuple[str, str]]:
    """(node id, "text") of the text encoders wired into a ``positive`` input (the prompt to vary)."""
    targets = []
    for node in prompt.values():
        link = node.get("inputs", {}).get("positive")
        if isinstance(link, list) and link and str(link[0]) in prompt:
            source = str(link[0])
            if "text" in prompt[source].get("inputs", {}) and (source, "text") not in targets:
                targets.append((source, "text"))
    if not targets:
        texts = [nid for nid, node in prompt.items() if "text" in node.get("inputs", {})]
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


# ---------------------------------------------------------------- HTTP ----------------------------------
class Server:
    """The few ComfyUI HTTP calls this script needs."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url, self.timeout = url.rstrip("/"), timeout

    def _call(self, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data,
                                     headers={"Content-Type": "application/json"} if data else {})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return resp.read()

    def queue(self, prompt: dict, client_id: str) -> str:
        """POST /prompt; raises ``RuntimeError`` with the server's node_errors when it is refused."""
        try:
            answer = json.loads(self._call("/prompt", {"prompt": prompt, "client_id": client_id}))
        except urllib.error.HTTPError as err:
            body = err.read().decode(errors="replace")
            raise RuntimeError(f"HTTP {err.code}: {body[:3000]}") from None
        if answer.get("node_errors"):
            raise RuntimeError(json.dumps(answer["node_errors"])[:3000])
        return answer["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        return json.loads(self._call(f"/history/{prompt_id}")).get(prompt_id)

    def view(self, item: dict) -> bytes:
        query = urllib.parse.urlencode({k: item.get(k, "") for k in ("filename", "subfolder", "type")})
        return self._call("/view?" + query)


class ProgressSocket(threading.Thread):
    """Reads ComfyUI's websocket (text frames only) and prints progress lines. Standard library only.

    Optional: if it cannot connect the batch still completes through ``/history`` polling.
    """

    def __init__(self, url: str, client_id: str, names: dict[str, int], out=sys.stderr):
        super().__init__(daemon=True)
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.path = f"/ws?clientId={client_id}"
        self.names, self.out = names, out
        self.sock: socket.socket | None = None

    def connect(self) -> bool:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=10)
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall((f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            header = b""
            while b"\r\n\r\n" not in header:
                chunk = sock.recv(1024)
                if not chunk:
                    return False
                header += chunk
            if b" 101 " not in header.split(b"\r\n", 1)[0]:
                return False
            self.buffer = header.split(b"\r\n\r\n", 1)[1]
            sock.settimeout(None)
            self.sock = sock
            return True
        except OSError:
            return False

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _frames(self):
        """Yield (opcode, payload) of whole messages (server frames are never masked)."""
        message, message_op = b"", None
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(length)
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping -> pong (client frames must be masked)
                key = os.urandom(4)
                masked = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + key + masked)
                continue
            if opcode == 0x8:
                return
            if opcode in (0x1, 0x2):
                message, message_op = payload, opcode
            else:  # continuation
                message += payload
            if b0 & 0x80:
                yield message_op, message

    def run(self) -> None:
        try:
            for opcode, payload in self._frames():
                if opcode != 0x1:
                    continue  # binary frames are preview images
                event = json.loads(payload)
                data = event.get("data") or {}
                job = self.names.get(data.get("prompt_id"))
                if event.get("type") == "progress" and job is not None:
                    print(f"  job {job}: node {data.get('node')} {data['value']}/{data['max']}", file=self.out)
        except (OSError, EOFError, ValueError):
            pass

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass


# ---------------------------------------------------------------- batch ---------------------------------
def output_items(entry: dict) -> list[dict]:
    """Every ``{filename, subfolder, type}`` that a history entry's outputs point at."""
    items = []
    for node_output in entry.get("outputs", {}).values():
        for key in ("images", "gifs", "videos", "audio"):
            items.extend(i for i in node_output.get(key, []) if isinstance(i, dict) and "filename" in i)
    return items


def entry_error(entry: dict) -> str | None:
    status = entry.get("status") or {}
    for kind, data in status.get("messages", []):
        if kind in ("execution_error", "execution_interrupted"):
            return f"{kind}: node {data.get('node_id')} ({data.get('node_type')}): {data.get('exception_message', '')}"
    return "error" if status.get("status_str") == "error" else None


def run_batch(server: Server, jobs: list[tuple[dict, dict]], out_dir: str, timeout: float = 3600.0,
              progress: bool = True, log=sys.stderr) -> list[dict]:
    """Queue every job, wait for all, download their files; returns (and writes) the manifest."""
    os.makedirs(out_dir, exist_ok=True)
    client_id = uuid.uuid4().hex
    records, names = [], {}
    listener = None
    if progress:
        listener = ProgressSocket(server.url, client_id, names, out=log)
        listener = listener if listener.connect() else None
        if listener:
            listener.start()
    try:
        for index, (prompt, overrides) in enumerate(jobs):
            record = {"job": index, "overrides": overrides, "prompt_id": None, "status": "queued", "files": []}
            try:
                record["prompt_id"] = server.queue(prompt, client_id)
                names[record["prompt_id"]] = index
                print(f"queued job {index} {overrides} -> {record['prompt_id']}", file=log)
            except RuntimeError as err:
                record.update(status="rejected", error=str(err))
                print(f"job {index} rejected: {err}", file=log)
            records.append(record)
        deadline = time.monotonic() + timeout
        pending = [r for r in records if r["status"] == "queued"]
        while pending and time.monotonic() < deadline:
            for record in list(pending):
                entry = server.history(record["prompt_id"])
                if entry is None:
                    continue
                pending.remove(record)
                error = entry_error(entry)
                if error:
                    record.update(status="failed", error=error)
                    print(f"job {record['job']} failed: {error}", file=log)
                    continue
                for item in output_items(entry):
                    target = os.path.join(out_dir, f"{record['job']:03d}_{os.path.basename(item['filename'])}")
                    with open(target, "wb") as f:
                        f.write(server.view(item))
                    record["files"].append(os.path.basename(target))
                record["status"] = "done"
                print(f"job {record['job']} done: {', '.join(record['files']) or 'no files'}", file=log)
            time.sleep(0.25)
        for record in pending:
            record.update(status="timeout", error=f"not finished after {timeout} s")
    finally:
        if listener:
            listener.close()
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(records, f, indent=1)
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
    parser.add_argument("--server", default="http://127.0.0.1:8188", help="ComfyUI URL")
    parser.add_argument("--out", default="out/batch", help="folder for the downloaded files + manifest.json")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="SEL.input=VALUE")
    parser.add_argument("--sweep", action="append", default=[], metavar="SEL.input=V1,V2,...")
    parser.add_argument("--text", action="append", default=[], help="positive prompt text (repeatable)")
    parser.add_argument("--seed", action="append", default=[], type=int, help="seed (repeatable)")
    parser.add_argument("--gamma", action="append", default=[], type=float, help="noise-prior gamma (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="queue each combination N times")
    parser.add_argument("--random-seed", action="store_true", help="a fresh random seed for every job")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the whole batch")
    parser.add_argument("--no-progress", action="store_true", help="do not follow the websocket")
    parser.add_argument("--dry-run", action="store_true", help="print the prompts, queue nothing")
    args = parser.parse_args(argv)

    workflow = load_workflow(args.workflow)
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
        jobs = build_jobs(workflow, args.sets, sweeps, args.repeat, args.random_seed)
    except OverrideError as err:
        parser.error(str(err))
    if args.dry_run:
        json.dump([{"overrides": o, "prompt": p} for p, o in jobs], sys.stdout, indent=1)
        print()
        return 0
    records = run_batch(Server(args.server), jobs, args.out, args.timeout, progress=not args.no_progress)
    done = sum(r["status"] == "done" for r in records)
    print(f"{done}/{len(records)} jobs done; files in {args.out}", file=sys.stderr)
    return 0 if done == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
