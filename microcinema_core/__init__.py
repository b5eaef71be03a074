"""MicroCinema core: plain PyTorch, no ComfyUI imports.

Paper: Wang et al., "MicroCinema: A Divide-and-Conquer Approach for Text-to-Video Generation", CVPR 2024.
"""
from .config import MicroCinemaConfig
from .errors import CheckpointError, MicroCinemaInputError

__all__ = ["MicroCinemaConfig", "CheckpointError", "MicroCinemaInputError"]
