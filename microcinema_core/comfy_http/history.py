"""What a ``GET /history/{prompt_id}`` entry says: how the run ended and which files it wrote."""
from __future__ import annotations

# the keys under which nodes list the files they wrote (SaveImage: images; video/animation nodes: gifs,
# videos, or images with animated=True; SaveAudio: audio)
OUTPUT_KINDS = ("images", "gifs", "videos", "audio")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".gif", ".mov", ".mkv", ".avi", ".webp")


def execution_error(entry: dict) -> dict | None:
    """The ``execution_error`` (or ``execution_interrupted``) message of a history entry as
    ``{"kind": ..., **data}``, ``{"kind": "error", ...}`` for a bare error status, else None."""
    status = entry.get("status") or {}
    for kind, data in status.get("messages", []):
        if kind in ("execution_error", "execution_interrupted"):
            return {"kind": kind, **(data or {})}
    if status.get("status_str") == "error":
        return {"kind": "error", "messages": status.get("messages")}
    return None


def describe_error(error: dict) -> str:
    """One line for an ``execution_error`` result: kind, node id and type, the exception message."""
    if "node_id" not in error and "node_type" not in error:
        return f"{error.get('kind', 'error')} (no message)"
    return (f"{error['kind']}: node {error.get('node_id')} ({error.get('node_type')}): "
            f"{error.get('exception_message', '')}".rstrip(": "))


def outputs_by_node(entry: dict) -> dict[str, list[dict]]:
    """node id -> every ``{filename, subfolder, type}`` that node's outputs point at (nodes with none left out)."""
    found = {}
    for node_id, node_output in (entry.get("outputs") or {}).items():
        items = [item for kind in OUTPUT_KINDS for item in (node_output or {}).get(kind, [])
                 if isinstance(item, dict) and "filename" in item]
        if items:
            found[node_id] = items
    return found


def output_files(entry: dict) -> list[dict]:
    """Every ``{filename, subfolder, type}`` that a history entry's outputs point at, node by node."""
    return [item for items in outputs_by_node(entry).values() for item in items]


def is_video(item: dict) -> bool:
    """Whether an output item is a video or animation file (by its extension)."""
    return item["filename"].lower().endswith(VIDEO_EXTENSIONS)
