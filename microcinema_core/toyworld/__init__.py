"""The toy world: captioned video clips made from real photos and real videos that registry packages ship.

``sources`` gathers the pictures and video frames into one file; ``motions`` defines the camera and object
motions with their amplitudes; ``captions`` the paraphrases (training and held-out); ``render`` draws
frames; ``world`` puts them together, deterministically by (seed, index). Plain numpy/PyTorch: no ComfyUI.

The data layer only: it imports nothing of the pack but ``atomic``; the drivers that train, probe and measure the toy
bundle on it are in ``microcinema_core/experiments/``.
"""
