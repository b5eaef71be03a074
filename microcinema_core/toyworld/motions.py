"""The toy world's motions and how far each moves per base-rate frame interval (2 fps).

Camera motions are described by what the viewer sees: ``pan_left`` is the camera turning left, so the
picture's content slides **right** across the frame; ``zoom_in`` magnifies the content; ``rotate_cw`` turns
the content clockwise on screen. Object motions move a cut-out object over a still background in the named
direction. Speed words scale the amplitude: "slowly" x0.5, none x1, "quickly" x1.5.
"""
from __future__ import annotations

CAMERA_MOTIONS = ("static", "pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out",
                  "rotate_cw", "rotate_ccw")
OBJECT_MOTIONS = ("object_left", "object_right", "object_up", "object_down")
REAL = "real"
SPEEDS = {"slow": 0.5, "normal": 1.0, "quick": 1.5}

# per base-rate interval, at speed "normal"
PAN_FRACTION = 0.07        # of the view's width
ZOOM_LOG = 0.07            # log of the scale change
ROTATE_DEGREES = 4.0
OBJECT_FRACTION = 0.08     # of the frame's width

# direction of the CONTENT's motion on screen (x right, y down) for the translations
CONTENT_DIRECTION = {
    "pan_left": (1.0, 0.0), "pan_right": (-1.0, 0.0), "pan_up": (0.0, 1.0), "pan_down": (0.0, -1.0),
    "object_left": (-1.0, 0.0), "object_right": (1.0, 0.0), "object_up": (0.0, -1.0), "object_down": (0.0, 1.0),
}


def is_camera(motion: str) -> bool:
    return motion in CAMERA_MOTIONS


def camera_path(motion: str, speed: str, times) -> dict:
    """Per-frame camera offsets for ``times`` (in base intervals, 0 at the keyframe).

    Returns ``shift`` (view-centre offsets in units of the view's width, camera coordinates), ``log_scale``
    (log of the view size relative to the keyframe's) and ``angle`` (radians, the view's rotation).
    """
    import numpy as np

    times = np.asarray(times, dtype=np.float64)
    amp = SPEEDS[speed]
    shift = np.zeros((len(times), 2))
    log_scale = np.zeros(len(times))
    angle = np.zeros(len(times))
    if motion in CONTENT_DIRECTION:
        dx, dy = CONTENT_DIRECTION[motion]
        # the camera moves opposite to the content
        shift[:, 0] = -dx * PAN_FRACTION * amp * times
        shift[:, 1] = -dy * PAN_FRACTION * amp * times
    elif motion == "zoom_in":
        log_scale = -ZOOM_LOG * amp * times     # the view shrinks: content grows
    elif motion == "zoom_out":
        log_scale = ZOOM_LOG * amp * times
    elif motion == "rotate_cw":
        angle = -np.deg2rad(ROTATE_DEGREES) * amp * times   # content turns clockwise on screen (y down)
    elif motion == "rotate_ccw":
        angle = np.deg2rad(ROTATE_DEGREES) * amp * times
    elif motion != "static":
        raise ValueError(f"unknown camera motion {motion!r}")
    return {"shift": shift, "log_scale": log_scale, "angle": angle}


def object_path(motion: str, speed: str, times):
    """Per-frame object-centre offsets (fractions of the frame's width, screen coordinates)."""
    import numpy as np

    dx, dy = CONTENT_DIRECTION[motion]
    t = np.asarray(times, dtype=np.float64)[:, None]
    return t * OBJECT_FRACTION * SPEEDS[speed] * np.array([[dx, dy]])
