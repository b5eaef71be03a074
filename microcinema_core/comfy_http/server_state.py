"""One server of a batch: its client, what it has in flight, and what it did (per-server throughput)."""
from __future__ import annotations

import time
import uuid

from .client import ComfyClient

UP, DOWN, RETIRED = "up", "down", "retired"


class ServerState:
    """A server's part in a batch: ``UP`` takes prompts, ``DOWN`` did not answer (probed again later),
    ``RETIRED`` failed prompts that other servers then made (left out for the rest of the batch)."""

    def __init__(self, client: ComfyClient):
        self.client = client
        self.url = client.url
        self.client_id = uuid.uuid4().hex      # the websocket events of this batch's prompts
        self.state = UP
        self.in_flight: dict[str, tuple[int, float]] = {}   # prompt_id -> (job index, queued at)
        self.stale: set[str] = set()           # prompt ids given to others while this server was down
        self.done = 0
        self.failed = 0                        # attempts that ended in an error here
        self.moved_away = 0                    # prompts handed to other servers when this one went down/retired
        self.blamed = 0                        # consecutive failures here of jobs another server then made
        self.first_queued: float | None = None
        self.last_done: float | None = None
        self.seconds: list[float] = []         # queued -> collected, per video made here
        self.down_since: float | None = None
        self.last_probe = 0.0
        self.last_error = ""

    def free_slots(self, depth: int, remaining: int) -> int:
        """How many more prompts to queue here: ``depth`` minus what the server holds (ours and others')."""
        return depth - max(remaining, len(self.in_flight))

    def mark_queued(self, prompt_id: str, job: int) -> None:
        now = time.monotonic()
        self.in_flight[prompt_id] = (job, now)
        if self.first_queued is None:
            self.first_queued = now

    def mark_done(self, seconds: float) -> None:
        """One video made here, ``seconds`` after it was queued."""
        self.last_done = time.monotonic()
        self.done += 1
        self.blamed = 0
        self.seconds.append(seconds)

    def hand_back(self) -> list[int]:
        """Empty ``in_flight`` (the server went down or was retired); returns the jobs to give to others."""
        jobs = [job for job, _ in self.in_flight.values()]
        self.stale.update(self.in_flight)
        self.moved_away += len(jobs)
        self.in_flight.clear()
        return jobs

    def throughput(self) -> dict:
        """Videos made here, over the span from its first queued prompt to its last finished one."""
        span = (self.last_done - self.first_queued) if self.done and self.first_queued is not None else 0.0
        return {"server": self.url, "state": self.state, "done": self.done, "failed_attempts": self.failed,
                "moved_to_others": self.moved_away, "span_seconds": round(span, 2),
                "videos_per_minute": round(60.0 * self.done / span, 3) if span > 0 else None,
                "mean_seconds_queued_to_saved": (round(sum(self.seconds) / len(self.seconds), 2)
                                                 if self.seconds else None),
                "last_error": self.last_error or None}


def throughput_table(rows: list[dict], wall_seconds: float) -> str:
    """The per-server throughput as a Markdown table, with the batch's total."""
    lines = ["| server | state | videos | videos/min | s per video (queued->saved) | failed | moved to others |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        rate = f"{r['videos_per_minute']:.2f}" if r["videos_per_minute"] else "-"
        mean = f"{r['mean_seconds_queued_to_saved']:.1f}" if r["mean_seconds_queued_to_saved"] else "-"
        lines.append(f"| {r['server']} | {r['state']} | {r['done']} | {rate} | {mean} | {r['failed_attempts']} | "
                     f"{r['moved_to_others']} |")
    total = sum(r["done"] for r in rows)
    rate = f"{60.0 * total / wall_seconds:.2f}" if wall_seconds > 0 and total else "-"
    lines.append(f"| all | | {total} | {rate} | | | |")
    return "\n".join(lines)
