"""The resumable record of a batch: one JSON line per job made, appended and flushed as each one is saved.

Whichever server made a job, its line says so; a rerun reads the lines back and runs only the jobs that have
none (or whose files are gone). A line cut short by a crash is ignored. Lines with a ``plan`` key hold facts
about the batch itself (e.g. the base of ``--random-seed``), so a rerun rebuilds the same jobs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


class Journal:
    """``OUT/journal.jsonl``: ``done`` maps a job key to its record; ``plan`` holds the batch's facts."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.done: dict[str, dict] = {}
        self.plan: dict = {}
        text = self.path.read_text() if self.path.is_file() else ""
        self._cut_short = bool(text) and not text.endswith("\n")   # start the next line on a line of its own
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a run that was killed while writing it
            if "plan" in record:
                self.plan.update(record["plan"])
            elif "key" in record:
                self.done[record["key"]] = record

    def _append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(("\n" if self._cut_short else "") + json.dumps(record) + "\n")
            self._cut_short = False
            f.flush()
            os.fsync(f.fileno())

    def add_plan(self, **facts) -> None:
        """Record facts about the batch (kept by every later run)."""
        self.plan.update(facts)
        self._append({"plan": facts})

    def add_done(self, record: dict) -> None:
        """Record one job made; ``record["key"]`` names the job."""
        self.done[record["key"]] = record
        self._append(record)
