"""API-format prompts made of stock ComfyUI nodes, shared by the host tests."""
from __future__ import annotations

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)]


def colour_prompt(fmt: str, prefix: str, fps: float = 8.0, width: int = 64, height: int = 48) -> dict:
    """Stock nodes only: one EmptyImage per colour of ``COLOURS``, batched in order -> Save Video.

    Every frame differs from the one before: webp and gif encoders merge identical consecutive frames
    into one longer frame (same playback, fewer frames), which would hide a wrong frame count.
    """
    prompt, previous = {}, None
    for i, (r, g, b) in enumerate(COLOURS):
        prompt[f"c{i}"] = {"class_type": "EmptyImage", "inputs": {
            "width": width, "height": height, "batch_size": 1, "color": (r << 16) | (g << 8) | b}}
        if previous is not None:
            prompt[f"b{i}"] = {"class_type": "ImageBatch", "inputs": {"image1": previous, "image2": [f"c{i}", 0]}}
        previous = [f"b{i}", 0] if i else ["c0", 0]
    prompt["save"] = {"class_type": "MicroCinemaSaveVideo", "inputs": {
        "images": previous, "fps": fps, "format": fmt, "filename_prefix": prefix, "quality": 18}}
    return prompt


def write_noise_frames(path, count: int, side: int, seed: int = 0) -> str:
    """``count`` frames of random pixels (slow to encode, large as H.264) as one animated webp at ``path``;
    returns its file name for Load Image. Both hosts' Load Image read every frame of an animated webp (a current
    ComfyUI reads a multi-page TIFF as one picture)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    frames = [Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(count)]
    frames[0].save(path, format="WEBP", save_all=True, append_images=frames[1:], quality=90, method=0)
    return path.name
