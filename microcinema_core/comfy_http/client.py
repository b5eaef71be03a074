"""``ComfyClient``: one running ComfyUI server, through its HTTP API (urllib; works with any ComfyUI version)."""
from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from .errors import ComfyError, PromptFailed, PromptRejected, ServerUnreachable
from .history import execution_error


class ComfyClient:
    """The HTTP calls a launcher, a batch or an evaluation needs from one ComfyUI server.

    Connection problems raise ``ServerUnreachable``; a refused prompt ``PromptRejected``; ``run`` raises
    ``PromptFailed`` when the server ran the prompt into an error. ``request`` never raises on an HTTP status.
    """

    def __init__(self, url: str, timeout: float = 30.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"ComfyUI URL {url!r}: expected http://HOST:PORT (e.g. http://127.0.0.1:8188)")
        self.url = url.rstrip("/")
        self.timeout = timeout

    @property
    def base_url(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"ComfyClient({self.url!r})"

    # -- raw HTTP ---------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, data: bytes | None = None, headers: dict | None = None,
              timeout: float | None = None) -> tuple[int, bytes, str]:
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            return err.code, err.read(), err.headers.get("Content-Type", "")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            raise ServerUnreachable(f"ComfyUI server {self.url} not reachable ({getattr(err, 'reason', err)}): "
                                    "start ComfyUI (python main.py --listen 127.0.0.1 --port 8188) or check "
                                    "the --server URL") from err

    def request(self, method: str, path: str, body: dict | None = None, timeout: float | None = None):
        """Send one request (``body`` as JSON); returns ``(status, parsed JSON or raw bytes)``."""
        data = None if body is None else json.dumps(body).encode()
        status, raw, ctype = self._send(method, path, data,
                                        {"Content-Type": "application/json"} if data is not None else None, timeout)
        if "json" in ctype:
            return status, json.loads(raw or b"null")
        return status, raw

    def get_json(self, path: str, timeout: float | None = None):
        """``GET path`` -> parsed JSON; ``ComfyError`` unless HTTP 200."""
        status, payload = self.request("GET", path, timeout=timeout)
        if status != 200:
            raise ComfyError(f"GET {self.url}{path} -> HTTP {status}: {payload!r:.2000}")
        return payload

    # -- API ------------------------------------------------------------------------------------------------
    def system_stats(self, timeout: float | None = None) -> dict:
        """``GET /system_stats`` (raises ``ServerUnreachable`` when nothing answers)."""
        return self.get_json("/system_stats", timeout=timeout)

    check = system_stats

    def object_info(self) -> dict:
        """``GET /object_info``: every node class the server knows, with its inputs."""
        return self.get_json("/object_info")

    def queue_remaining(self) -> int:
        """Prompts running or waiting on the server, from every client (``GET /prompt``)."""
        return int(self.get_json("/prompt")["exec_info"]["queue_remaining"])

    def queue(self, prompt: dict, client_id: str | None = None) -> str:
        """``POST /prompt``; returns the ``prompt_id``. Raises ``PromptRejected`` with the server's answer."""
        body = {"prompt": prompt}
        if client_id:
            body["client_id"] = client_id
        status, payload = self.request("POST", "/prompt", body)
        if status != 200 or not isinstance(payload, dict):
            raise PromptRejected(status, payload if isinstance(payload, dict) else {"raw": repr(payload)[:2000]})
        if payload.get("node_errors"):
            raise PromptRejected(status, payload)
        return payload["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        """The history entry of one prompt, or None while it has not finished."""
        return self.get_json(f"/history/{prompt_id}").get(prompt_id)

    def wait(self, prompt_id: str, timeout: float = 120.0, poll: float = 0.1) -> dict:
        """Block until the prompt is in ``/history``; returns its entry (``outputs``, ``status``), even a
        failed one (see ``history.execution_error``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.history(prompt_id)
            if entry is not None:
                return entry
            time.sleep(poll)
        raise ComfyError(f"prompt {prompt_id} not finished on {self.url} after {timeout:.0f} s (raise the timeout)")

    def run(self, prompt: dict, timeout: float = 120.0) -> dict:
        """Queue and wait; raises ``PromptFailed`` with the server's messages unless it succeeded."""
        prompt_id = self.queue(prompt)
        entry = self.wait(prompt_id, timeout)
        error = execution_error(entry)
        if error is not None:
            raise PromptFailed(prompt_id, error)
        return entry

    def interrupt(self) -> None:
        """``POST /interrupt``: stop the prompt that is running now."""
        status, payload = self.request("POST", "/interrupt", {})
        if status != 200:
            raise ComfyError(f"POST {self.url}/interrupt -> HTTP {status}: {payload!r:.500}")

    def delete_queued(self, prompt_ids: list[str]) -> None:
        """``POST /queue {"delete": ids}``: drop prompts that are still waiting (a running one is not stopped)."""
        status, payload = self.request("POST", "/queue", {"delete": list(prompt_ids)})
        if status != 200:
            raise ComfyError(f"POST {self.url}/queue delete -> HTTP {status}: {payload!r:.500}")

    def view(self, filename: str | dict, subfolder: str = "", type: str = "output") -> bytes:
        """Download an output file through ``GET /view`` as the web UI does; ``filename`` may be a whole
        output item ``{filename, subfolder, type}``."""
        if isinstance(filename, dict):
            item = filename
            filename, subfolder, type = item["filename"], item.get("subfolder", ""), item.get("type", "output")
        query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": type})
        status, raw, _ = self._send("GET", "/view?" + query, timeout=max(60.0, self.timeout))
        if status != 200:
            raise ComfyError(f"GET {self.url}/view?{query} -> HTTP {status}")
        return raw

    def upload_image(self, path: str | Path, name: str) -> str:
        """``POST /upload/image`` (multipart, overwrite); returns the value a Load Image node takes."""
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode()
                 for field, value in (("overwrite", "true"), ("type", "input"))]
        parts.append((f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                      "Content-Type: application/octet-stream\r\n\r\n").encode() + Path(path).read_bytes() + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        status, raw, _ = self._send("POST", "/upload/image", b"".join(parts),
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status != 200:
            raise ComfyError(f"POST {self.url}/upload/image {name} -> HTTP {status}: {raw[:500]!r}")
        payload = json.loads(raw)
        return f"{payload['subfolder']}/{payload['name']}" if payload.get("subfolder") else payload["name"]

    def listen(self, on_event=None) -> "ProgressListener":
        """A websocket listener (use as a context manager); pass its ``client_id`` to ``queue``."""
        from .websocket import ProgressListener

        return ProgressListener(self.url, on_event=on_event)
