"""Motion class and amplitude of a video, measured from optical flow (OpenCV Farneback).

Between consecutive frames the dense flow is fitted by least squares with a global affine motion
``u = tx + a x + b y``, ``v = ty + c x + d y`` (x right, y down, origin at the frame centre, pixels). Its parts:

* translation ``(tx, ty)``: the content's mean shift (a camera pan left moves content right: +tx);
* divergence ``(a + d) / 2``: > 0 when content grows (zoom in);
* curl ``(c - b) / 2``: > 0 when content turns clockwise on screen (y points down).

The three are compared in pixels of displacement at ``radius`` from the centre (0.35 x the frame size), the
largest names the class, and a video whose mean flow magnitude is under ``STATIC_FRACTION`` of the frame
size per frame (0.35 px at 128 px) is static.
Class names are those of ``toyworld.motions`` (camera motions), so a generated video's class can be set
against the class its prompt named.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ("static", "pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out",
           "rotate_cw", "rotate_ccw")
STATIC_FRACTION = 0.35 / 128


@dataclass
class GlobalMotion:
    tx: float
    ty: float
    divergence: float
    curl: float
    magnitude: float     # mean |flow| in px per frame step
    size: int

    def components(self, radius_fraction: float = 0.35) -> dict:
        r = radius_fraction * self.size
        return {"translation": float(np.hypot(self.tx, self.ty)), "zoom": abs(self.divergence) * r,
                "rotation": abs(self.curl) * r}


def _grey(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0, 1) * 255).round().astype(np.uint8)
    if frame.ndim == 3:
        frame = (0.299 * frame[..., 0] + 0.587 * frame[..., 1] + 0.114 * frame[..., 2]).astype(np.uint8)
    return frame


def dense_flow(frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
    """Farneback flow ``[H, W, 2]`` (px) from a to b; frames ``[H, W, 3]`` uint8 or float in [0, 1]."""
    import cv2

    a, b = _grey(frame_a), _grey(frame_b)
    return cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3,
                                        poly_n=5, poly_sigma=1.2, flags=0)


def fit_global_motion(flow: np.ndarray, border: float = 0.1) -> tuple:
    """Least-squares affine fit of one flow field (the outer ``border`` fraction is left out)."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    xs -= (w - 1) / 2
    ys -= (h - 1) / 2
    m = (np.abs(xs) < (0.5 - border) * w) & (np.abs(ys) < (0.5 - border) * h)
    design = np.stack([np.ones(m.sum()), xs[m], ys[m]], axis=1)
    (tx, a, b), *_ = np.linalg.lstsq(design, flow[..., 0][m], rcond=None)
    (ty, c, d), *_ = np.linalg.lstsq(design, flow[..., 1][m], rcond=None)
    return tx, ty, (a + d) / 2, (c - b) / 2, float(np.linalg.norm(flow[m], axis=1).mean())


def video_motion(frames) -> GlobalMotion:
    """Mean global motion over all consecutive pairs of ``frames`` (``[N, H, W, 3]`` or ``[N, 3, H, W]``)."""
    frames = np.asarray(frames)
    if frames.ndim == 4 and frames.shape[1] == 3 and frames.shape[-1] != 3:
        frames = frames.transpose(0, 2, 3, 1)
    fits = [fit_global_motion(dense_flow(frames[i], frames[i + 1])) for i in range(len(frames) - 1)]
    tx, ty, div, curl, mag = (float(np.mean(v)) for v in zip(*fits))
    return GlobalMotion(tx, ty, div, curl, mag, int(frames.shape[1]))


def classify(motion: GlobalMotion, static_fraction: float = STATIC_FRACTION) -> str:
    """The camera-motion class a global motion shows (see the module doc)."""
    if motion.magnitude < static_fraction * motion.size:
        return "static"
    parts = motion.components()
    kind = max(parts, key=parts.get)
    if kind == "translation":
        if abs(motion.tx) >= abs(motion.ty):
            return "pan_left" if motion.tx > 0 else "pan_right"
        return "pan_up" if motion.ty > 0 else "pan_down"
    if kind == "zoom":
        return "zoom_in" if motion.divergence > 0 else "zoom_out"
    return "rotate_cw" if motion.curl > 0 else "rotate_ccw"


def confusion_matrix(truth: list, predicted: list, classes: tuple = CLASSES) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for t, p in zip(truth, predicted):
        matrix[index[t], index[p]] += 1
    return matrix
