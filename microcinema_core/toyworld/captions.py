"""Captions: several paraphrases per motion, speed words, and a held-out set training never sees.

A caption is a motion phrase (with "slowly"/"quickly" or no speed word) and, most of the time, the subject
of the picture. ``split="train"`` draws from the training paraphrases and framings, ``split="heldout"``
from the held-out ones only; both sets are fixed lists, so what the evaluation asks in words is provably
new to the model.
"""
from __future__ import annotations

ADVERB = {"slow": "slowly ", "normal": "", "quick": "quickly "}

# {a}: the speed adverb with a trailing space, or nothing
PARAPHRASES = {
    "static": (
        ["a still shot", "the camera is static", "a static view with no motion", "the camera stays still",
         "nothing moves, a fixed camera"],
        ["a locked-off shot where nothing moves", "completely motionless footage"],
    ),
    "pan_left": (
        ["the camera pans {a}to the left", "camera panning {a}left", "the camera {a}moves to the left",
         "a camera pan {a}toward the left", "panning {a}left across the scene"],
        ["the camera {a}sweeps left", "filmed while the camera {a}turns to the left"],
    ),
    "pan_right": (
        ["the camera pans {a}to the right", "camera panning {a}right", "the camera {a}moves to the right",
         "a camera pan {a}toward the right", "panning {a}right across the scene"],
        ["the camera {a}sweeps right", "filmed while the camera {a}turns to the right"],
    ),
    "pan_up": (
        ["the camera pans {a}up", "camera tilting {a}upward", "the camera {a}moves up",
         "a camera tilt {a}toward the top", "tilting {a}up across the scene"],
        ["the camera {a}sweeps upward", "filmed while the camera {a}tilts up"],
    ),
    "pan_down": (
        ["the camera pans {a}down", "camera tilting {a}downward", "the camera {a}moves down",
         "a camera tilt {a}toward the bottom", "tilting {a}down across the scene"],
        ["the camera {a}sweeps downward", "filmed while the camera {a}tilts down"],
    ),
    "zoom_in": (
        ["the camera zooms in {a}", "{a}zooming in", "the camera {a}pushes in closer", "a zoom in {a}",
         "the view {a}magnifies, zooming in"],
        ["the lens {a}zooms into the picture", "the shot {a}closes in with a zoom"],
    ),
    "zoom_out": (
        ["the camera zooms out {a}", "{a}zooming out", "the camera {a}pulls back", "a zoom out {a}",
         "the view {a}widens, zooming out"],
        ["the lens {a}zooms away from the picture", "the shot {a}opens up with a zoom out"],
    ),
    "rotate_cw": (
        ["the picture rotates {a}clockwise", "{a}spinning clockwise", "the scene {a}turns clockwise",
         "a clockwise rotation {a}", "the image {a}rotates to the right, clockwise"],
        ["everything {a}revolves clockwise", "the frame {a}twists in a clockwise direction"],
    ),
    "rotate_ccw": (
        ["the picture rotates {a}counterclockwise", "{a}spinning counterclockwise",
         "the scene {a}turns counterclockwise", "a counterclockwise rotation {a}",
         "the image {a}rotates to the left, counterclockwise"],
        ["everything {a}revolves counterclockwise", "the frame {a}twists in an anticlockwise direction"],
    ),
    "object_left": (
        ["{o} moves {a}to the left", "{o} {a}slides left", "{o} travels {a}leftward across the frame"],
        ["{o} {a}drifts toward the left edge"],
    ),
    "object_right": (
        ["{o} moves {a}to the right", "{o} {a}slides right", "{o} travels {a}rightward across the frame"],
        ["{o} {a}drifts toward the right edge"],
    ),
    "object_up": (
        ["{o} moves {a}up", "{o} {a}slides upward", "{o} travels {a}toward the top of the frame"],
        ["{o} {a}drifts toward the top edge"],
    ),
    "object_down": (
        ["{o} moves {a}down", "{o} {a}slides downward", "{o} travels {a}toward the bottom of the frame"],
        ["{o} {a}drifts toward the bottom edge"],
    ),
    "real": (
        ["real footage of {s}", "a video of {s}", "{s}, real video"],
        ["a short clip showing {s}"],
    ),
}

# how the subject is combined with the motion phrase ({s}: subject, {m}: motion phrase)
FRAMINGS = (
    ["{m}", "{s}, {m}", "a photo of {s}, {m}", "{m}, {s}"],
    ["{m} over a picture of {s}", "an image of {s} while {m}"],
)
OBJECT_FRAMINGS = (["{m}", "{m} in front of {s}", "{m} over {s}"], ["{m} against {s}"])


def _pick(options: tuple, split: str) -> list:
    return options[0] if split == "train" else options[1]


def caption(motion: str, speed: str, subject: str, split: str, rng, object_subject: str = "an object") -> str:
    """One caption for a clip (``rng``: a numpy Generator)."""
    phrases = _pick(PARAPHRASES[motion], split)
    phrase = phrases[int(rng.integers(len(phrases)))]
    adverb = "" if motion in ("static", "real") else ADVERB[speed]
    phrase = phrase.replace("{a}", adverb).replace("{o}", object_subject).replace("{s}", subject)
    phrase = " ".join(phrase.split())
    if motion == "real":
        return phrase
    framings = _pick(OBJECT_FRAMINGS if motion.startswith("object_") else FRAMINGS, split)
    framing = framings[int(rng.integers(len(framings)))]
    return framing.replace("{m}", phrase).replace("{s}", subject)
