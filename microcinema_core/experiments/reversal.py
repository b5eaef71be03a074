"""Time reversal of toy clips: the same frames played backwards are a clip of the opposite motion.

A base clip's keyframe is its centre frame, so played backwards it keeps the keyframe and shows the opposite
motion: pan left <-> pan right, up <-> down, zoom in <-> out, clockwise <-> counterclockwise, an object's
direction likewise; static stays static. Its caption is the opposite motion's paraphrase in the same place
(the paraphrase lists of ``captions.py`` are parallel), with the same speed word, subject and framing.

Why (not in the paper): trained on a cache of 1,500 clips revisited dozens of times, the toy base learned which
way each keyframe had moved instead of reading the direction from the text (docs/model_cards.md). A reversed
copy shows the same keyframe with the opposite motion and the opposite words, so only the text can tell them
apart. Real clips are never reversed (people do not walk backwards).

``add_reversed_text(cache_dir, encode_text)`` writes ``reversed_text.safetensors`` next to a toy cache: the
reversed captions' embeddings and which clips may be reversed; the trainer (``train.reverse_rate``) uses it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Optional

import torch

from ..training.caching import REVERSED_TEXT
from ..weights.files import atomic_save_safetensors
from ..toyworld.captions import ADVERB, PARAPHRASES

OPPOSITE_MOTION = {
    "static": "static",
    "pan_left": "pan_right", "pan_right": "pan_left", "pan_up": "pan_down", "pan_down": "pan_up",
    "zoom_in": "zoom_out", "zoom_out": "zoom_in", "rotate_cw": "rotate_ccw", "rotate_ccw": "rotate_cw",
    "object_left": "object_right", "object_right": "object_left",
    "object_up": "object_down", "object_down": "object_up",
}


def _render(template: str, adverb: str) -> str:
    return " ".join(template.replace("{a}", adverb).split())


def opposite_caption(caption: str, motion: str, speed: str) -> Optional[str]:
    """The caption of the clip played backwards, or None when it cannot be reversed (real clips, unknown text)."""
    if motion not in OPPOSITE_MOTION:
        return None
    if motion == "static":
        return caption
    adverb = ADVERB[speed]
    mine = PARAPHRASES[motion][0] + PARAPHRASES[motion][1]
    theirs = PARAPHRASES[OPPOSITE_MOTION[motion]][0] + PARAPHRASES[OPPOSITE_MOTION[motion]][1]
    # the longest paraphrase first: "the camera pans to the left" before a shorter one it contains
    for k in sorted(range(len(mine)), key=lambda i: -len(mine[i])):
        pattern = re.escape(_render(mine[k], adverb)).replace(re.escape("{o}"), "(?P<o>.+?)")
        match = re.search(pattern, caption)
        if match is None:
            continue
        replacement = _render(theirs[k], adverb)
        if "o" in match.groupdict():
            replacement = replacement.replace("{o}", match.group("o"))
        return caption[:match.start()] + replacement + caption[match.end():]
    return None


def add_reversed_text(cache_dir: str | Path, encode_text: Callable[[list], torch.Tensor]) -> dict:
    """Write ``reversed_text.safetensors`` for a toy base cache (``encode_text``: captions -> ``[K, 77, D]``)."""
    import json

    cache_dir = Path(cache_dir)
    clips = json.loads((cache_dir / "manifest.json").read_text())["clips"]
    captions, reversible = [], []
    for clip in clips:
        other = opposite_caption(clip["caption"], clip.get("motion", ""), clip.get("speed", "normal"))
        reversible.append(other is not None)
        captions.append(other if other is not None else clip["caption"])
    text = torch.cat([encode_text(captions[i:i + 64]).half() for i in range(0, len(captions), 64)])
    atomic_save_safetensors({"text": text, "reversible": torch.tensor(reversible, dtype=torch.bool)},
                            cache_dir / REVERSED_TEXT)
    return {"reversible": int(sum(reversible)), "clips": len(clips)}
