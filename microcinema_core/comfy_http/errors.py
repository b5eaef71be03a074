"""What can go wrong talking to a ComfyUI server."""
from __future__ import annotations

import json


class ComfyError(RuntimeError):
    """A ComfyUI server refused a prompt, failed running it, or answered in an unexpected way."""


class ServerUnreachable(ComfyError, ConnectionError):
    """Nothing answered at the server's URL (refused, reset, timed out). Also an ``OSError``."""


class PromptRejected(ComfyError):
    """``POST /prompt`` refused the prompt (HTTP 400 with ``error`` and ``node_errors`` in ``body``, or
    another non-200 status) or accepted it while reporting ``node_errors``."""

    def __init__(self, status: int, body: dict):
        self.status = status
        self.body = body
        super().__init__(f"prompt rejected (HTTP {status}): {json.dumps(body, indent=1)[:4000]}")


class PromptFailed(ComfyError):
    """The server ran the prompt and it ended in an error or an interrupt (``error`` from
    ``history.execution_error``)."""

    def __init__(self, prompt_id: str, error: dict):
        self.prompt_id = prompt_id
        self.error = error
        super().__init__(f"prompt {prompt_id} failed: {json.dumps(error)[:4000]}")
