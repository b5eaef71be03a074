"""Evaluation measures (plain PyTorch / OpenCV, no ComfyUI): motion from optical flow, image fidelity."""
