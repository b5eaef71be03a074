"""The toy world: deterministic captioned clips, ``ToyWorld(sources, split, kind, seed).clip(index)``.

Base clips (``kind="base"``): 9 frames at the base rate (2 fps), the keyframe in the centre. TSR clips
(``kind="tsr"``): 5 frames at 4x that rate, spanning one base interval (first and last frame are the
condition). Every clip is a function of ``(seed, split, kind, index)`` alone.

What a clip shows: a camera motion over a photo (pans, zooms, rotations, static; 9 classes), a cut-out
from one photo moving over another photo (4 directions), or a real clip cut from a real video. Training
clips use training pictures, paraphrases and framings; ``split="heldout"`` uses only the held-out ones.
Augmentation: random view size and place, horizontal flips of the source picture, colour jitter.
``video_stills`` > 0: that share of the camera and object clips films a still frame of one of the split's videos
instead of a photo (named ``"<video>#<frame>"``): hundreds of backdrops instead of 13 photos, against the
toy base's gap between training and held-out pictures (docs/model_cards.md). 0 (the default) draws exactly the
clips it always drew.
``amplitude_octaves`` > 0: each clip's motion is scaled by a hidden factor ``2**u``, ``u`` uniform in
``[-amplitude_octaves, amplitude_octaves]`` (drawn from its own generator, so every other draw of the clip is
unchanged), recorded in ``meta["amplitude"]``; the caption does not say it. The trainer couples it to the noise
prior (``train.prior_amplitude_coupling``), so that gamma is the motion knob (docs/model_cards.md).
``amplitude_scale`` multiplies every clip's motion (e.g. TSR clips as large per base interval as real 2-fps video).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

from . import captions as cap
from .motions import (CAMERA_MOTIONS, OBJECT_MOTIONS, REAL, SPEEDS, ZOOM_LOG, camera_path, object_path)
from .render import camera_views, colour_jitter, paste, rotation_margin, soft_ellipse, to_tensor
from .sources import Sources

KINDS = {"base": (9, 1.0), "tsr": (5, 0.25)}   # frames, base intervals between frames


@dataclass
class ToyClip:
    frames: torch.Tensor          # [N, 3, S, S] in [0, 1]
    caption: str
    motion: str
    speed: str
    picture: str
    meta: dict = field(default_factory=dict)


@dataclass
class ClassMix:
    """How often each family of clips is drawn."""
    camera: float = 0.7
    objects: float = 0.2
    real: float = 0.1


class ToyWorld:
    def __init__(self, sources: Sources, split: str = "train", kind: str = "base", seed: int = 0,
                 size: int = 128, mix: ClassMix | None = None, motions: tuple | None = None,
                 video_stills: float = 0.0, amplitude_octaves: float = 0.0, amplitude_scale: float = 1.0):
        if amplitude_scale <= 0:
            raise ValueError(f"amplitude_scale multiplies every motion; it must be > 0, got {amplitude_scale!r}")
        if not 0.0 <= amplitude_octaves <= 3.0:
            raise ValueError(f"amplitude_octaves is a log2 half-range in [0, 3]; got {amplitude_octaves!r}")
        if not 0.0 <= video_stills <= 1.0:
            raise ValueError(f"video_stills is a share of clips, in [0, 1]; got {video_stills!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {tuple(KINDS)}, got {kind!r}")
        self.sources, self.split, self.kind, self.seed, self.size = sources, split, kind, seed, size
        self.mix = mix or ClassMix()
        self.motions = motions
        self.pictures = sources.picture_names(split)
        self.videos = sources.video_names(split)
        self.video_stills = video_stills if self.videos else 0.0
        self.amplitude_octaves, self.amplitude_scale = amplitude_octaves, amplitude_scale
        self.num_frames, self.interval = KINDS[kind]
        self._tensors: dict = {}

    # ---- drawing one clip ------------------------------------------------------------------------
    def rng(self, index: int) -> np.random.Generator:
        key = zlib.crc32(f"{self.split}/{self.kind}".encode())
        return np.random.default_rng([self.seed, key, int(index)])

    def amplitude(self, index: int) -> float:
        """The clip's hidden motion factor (``amplitude_scale`` unless ``amplitude_octaves``), from a generator of its
        own."""
        if not self.amplitude_octaves:
            return float(self.amplitude_scale)
        key = zlib.crc32(f"{self.split}/{self.kind}/amplitude".encode())
        u = np.random.default_rng([self.seed, key, int(index)]).uniform(-1.0, 1.0)
        return float(self.amplitude_scale * 2.0 ** (u * self.amplitude_octaves))

    def times(self) -> np.ndarray:
        """Frame times in base intervals: base -4..4 (keyframe at 0); TSR 0..1."""
        n = self.num_frames
        if self.kind == "base":
            return np.arange(n, dtype=np.float64) - (n - 1) / 2
        return np.arange(n, dtype=np.float64) * self.interval

    def clip(self, index: int, motion: str | None = None, speed: str | None = None,
             picture: str | None = None, amplitude: float | None = None) -> ToyClip:
        """Clip ``index``; ``motion`` / ``speed`` / ``picture`` / ``amplitude`` override the drawn ones."""
        rng = self.rng(index)
        amp = self.amplitude(index) if amplitude is None else float(amplitude)
        if amp <= 0:
            raise ValueError(f"amplitude must be > 0, got {amp!r}")
        if motion is None:
            motion = self._draw_motion(rng)
        if speed is None:
            speed = list(SPEEDS)[int(rng.integers(len(SPEEDS)))]
        if motion == REAL:
            return self._real_clip(rng, amp)
        if picture is None:
            picture = self._draw_picture(rng)
        if motion in CAMERA_MOTIONS:
            frames = self._camera_clip(rng, picture, motion, speed, amp)
            text = cap.caption(motion, speed, self.sources.subject(picture), self.split, rng)
        else:
            frames, obj = self._object_clip(rng, picture, motion, speed, amp)
            text = cap.caption(motion, speed, self.sources.subject(picture), self.split, rng,
                               object_subject=self.sources.subject(obj))
        frames = colour_jitter(frames, rng)
        return ToyClip(frames, text, motion, speed, picture, meta={"amplitude": amp})

    def _draw_motion(self, rng) -> str:
        if self.motions:
            return self.motions[int(rng.integers(len(self.motions)))]
        u = rng.uniform()
        if u < self.mix.camera or (not self.videos and u < self.mix.camera + self.mix.real):
            return CAMERA_MOTIONS[int(rng.integers(len(CAMERA_MOTIONS)))]
        if u < self.mix.camera + self.mix.objects or not self.videos:
            return OBJECT_MOTIONS[int(rng.integers(len(OBJECT_MOTIONS)))]
        return REAL

    def _draw_picture(self, rng) -> str:
        if self.video_stills and rng.uniform() < self.video_stills:   # no draw at 0: the default world is unchanged
            name = self.videos[int(rng.integers(len(self.videos)))]
            return f"{name}#{int(rng.integers(len(self.sources.videos[name])))}"
        return self.pictures[int(rng.integers(len(self.pictures)))]

    def _picture(self, name: str, flip: bool) -> torch.Tensor:
        video, _, frame = name.partition("#")
        if frame:   # a video still: hundreds of them, not kept
            image = to_tensor(self.sources.videos[video][int(frame)])
            return image.flip(-1) if flip else image
        key = (name, flip)
        if key not in self._tensors:
            image = to_tensor(self.sources.pictures[name])
            self._tensors[key] = image.flip(-1) if flip else image
        return self._tensors[key]

    def _camera_clip(self, rng, picture: str, motion: str, speed: str, amplitude: float = 1.0) -> torch.Tensor:
        image = self._picture(picture, bool(rng.integers(2)))
        _, h, w = image.shape
        path = camera_path(motion, speed, self.times() * amplitude)   # the paths are linear in time
        shift, log_scale, angle = path["shift"], path["log_scale"], path["angle"]
        # the largest view (half-width in px) that keeps every frame inside the picture
        grow = math.exp(max(log_scale.max(), 0.0)) * rotation_margin(np.abs(angle).max())
        span_x = np.abs(shift[:, 0]).max() * 2
        span_y = np.abs(shift[:, 1]).max() * 2
        half_max = min((w / 2) / (grow + span_x * 2), (h / 2) / (grow + span_y * 2))
        half = half_max * rng.uniform(0.6, 0.95)
        halves = half * np.exp(log_scale)
        # the keyframe's centre, anywhere the whole path fits
        reach_x = half * grow + np.abs(shift[:, 0]).max() * 2 * half
        reach_y = half * grow + np.abs(shift[:, 1]).max() * 2 * half
        cx = rng.uniform(min(reach_x, w / 2), max(w - reach_x, w / 2))
        cy = rng.uniform(min(reach_y, h / 2), max(h - reach_y, h / 2))
        centres = np.stack([cx + shift[:, 0] * 2 * half, cy + shift[:, 1] * 2 * half], axis=1)
        return camera_views(image, centres, halves, angle, self.size)

    def _object_clip(self, rng, picture: str, motion: str, speed: str, amplitude: float = 1.0):
        background = self._camera_clip(rng, picture, "static", "normal")
        others = [p for p in self.pictures if p != picture]
        obj = others[int(rng.integers(len(others)))]
        source = self._picture(obj, bool(rng.integers(2)))
        _, h, w = source.shape
        side = int(min(h, w) * rng.uniform(0.35, 0.6))
        y0 = int(rng.integers(0, h - side + 1))
        x0 = int(rng.integers(0, w - side + 1))
        aspect = rng.uniform(0.75, 1.33)
        cut_h, cut_w = side, max(8, int(side * aspect))
        x0 = min(x0, w - cut_w) if cut_w <= w else 0
        cutout = source[:, y0:y0 + cut_h, x0:x0 + cut_w]
        alpha = soft_ellipse(*cutout.shape[1:])
        offsets = object_path(motion, speed, self.times() * amplitude) * 2      # fractions of width -> [-1, 1] units
        start = rng.uniform(-0.15, 0.15, size=2)
        centres = start[None] + offsets
        frames = paste(background, cutout, alpha, centres, scale=rng.uniform(0.35, 0.5))
        return frames, obj

    def _real_clip(self, rng, amplitude: float = 1.0) -> ToyClip:
        name = self.videos[int(rng.integers(len(self.videos)))]
        video = self.sources.videos[name]
        fps = self.sources.video_fps[name]
        stride = max(1, round(fps / 2.0 * self.interval * amplitude))   # a larger amplitude: a longer stride
        span = stride * (self.num_frames - 1)
        start = int(rng.integers(0, max(1, len(video) - span)))
        idx = np.minimum(start + stride * np.arange(self.num_frames), len(video) - 1)
        clip = torch.from_numpy(video[idx]).permute(0, 3, 1, 2).float() / 255.0
        if rng.integers(2):
            clip = clip.flip(-1)
        _, _, h, w = clip.shape
        side = int(min(h, w) * rng.uniform(0.75, 1.0))
        y0 = int(rng.integers(0, h - side + 1))
        x0 = int(rng.integers(0, w - side + 1))
        clip = clip[:, :, y0:y0 + side, x0:x0 + side]
        frames = torch.nn.functional.interpolate(clip, size=(self.size, self.size), mode="bilinear",
                                                 antialias=True, align_corners=False)
        frames = colour_jitter(frames.clamp(0, 1), rng)
        text = cap.caption(REAL, "normal", self.sources.subject(name), self.split, rng)
        # the stride is whole frames: the amplitude the clip really has
        return ToyClip(frames, text, REAL, "normal", name, meta={"stride": stride, "start": start,
                                                                 "amplitude": stride / (fps / 2.0 * self.interval)})
