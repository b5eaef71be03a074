"""One client for a running ComfyUI server, over its HTTP API only (standard library; no ComfyUI import).

* ``client.ComfyClient``: ``/prompt``, ``/history``, ``/view``, ``/upload/image``, ``/interrupt``, ``/queue``...
* ``history``: what a history entry says (its error, its output files).
* ``websocket.ProgressListener``: the websocket events of one client id.
* ``workflow``: an API-format graph and the edits a batch makes to it (overrides, text, seed, keyframe).
* ``dispatch``: one batch spread over several servers (free capacity, failover, per-server throughput).

``scripts/comfy_host.py`` (the test and demo launcher), ``scripts/queue_batch.py`` and
``microcinema_core.eval.zero_shot`` all use it.
"""
from .client import ComfyClient
from .errors import ComfyError, PromptFailed, PromptRejected, ServerUnreachable
from .history import execution_error, output_files

__all__ = ["ComfyClient", "ComfyError", "PromptFailed", "PromptRejected", "ServerUnreachable",
           "execution_error", "output_files"]
