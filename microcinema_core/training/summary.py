"""Counts of what the data pipeline kept, skipped and filtered, with the reasons."""
from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("microcinema.training.data")


class SkippedVideoWarning(UserWarning):
    """A video could not be used (unreadable, too short, too low fps); it was skipped and counted."""


@dataclass
class DataSummary:
    videos_seen: int = 0
    videos_used: int = 0
    clips_kept: int = 0
    skipped: Counter = field(default_factory=Counter)   # video-level reasons
    filtered: Counter = field(default_factory=Counter)  # clip-level filter reasons
    skipped_examples: dict = field(default_factory=dict)  # reason -> first few messages

    def skip(self, reason: str, message: str) -> None:
        """Record a skipped video and warn (never raise)."""
        self.skipped[reason] += 1
        self.skipped_examples.setdefault(reason, [])
        if len(self.skipped_examples[reason]) < 5:
            self.skipped_examples[reason].append(message)
        warnings.warn(f"skipping video ({reason}): {message}", SkippedVideoWarning, stacklevel=2)
        log.warning("skipping video (%s): %s", reason, message)

    def drop(self, reason: str) -> None:
        self.filtered[reason] += 1

    @property
    def videos_skipped(self) -> int:
        return sum(self.skipped.values())

    def to_dict(self) -> dict:
        return {
            "videos_seen": self.videos_seen,
            "videos_used": self.videos_used,
            "videos_skipped": self.videos_skipped,
            "skipped_by_reason": dict(self.skipped),
            "skipped_examples": self.skipped_examples,
            "clips_kept": self.clips_kept,
            "clips_filtered_by_reason": dict(self.filtered),
        }

    def format(self) -> str:
        lines = [f"videos: {self.videos_seen} seen, {self.videos_used} used, {self.videos_skipped} skipped"]
        for reason, count in sorted(self.skipped.items()):
            lines.append(f"  skipped ({reason}): {count}")
        lines.append(f"clips: {self.clips_kept} kept, {sum(self.filtered.values())} filtered out")
        for reason, count in sorted(self.filtered.items()):
            lines.append(f"  filtered ({reason}): {count}")
        return "\n".join(lines)
