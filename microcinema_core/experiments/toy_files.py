"""The toy bundle's products in one place: its file names, the ComfyUI model folder each goes in, the
size (px) the shipped files are trained at, and the TSR's sampling steps in the toy workflows.

The bundle writes these files (``bundle.py``), ``workflows/definitions.py`` names them in the toy workflow, and
``scripts/toy_standins.py`` writes random-weight stand-ins under the same names. No imports: cheap to read.
"""
FILES = {"vae": "microcinema_toy_vae.safetensors", "base": "microcinema_toy_base.safetensors",
         "tsr": "microcinema_toy_tsr.safetensors",
         "custom": "microcinema_toy_custom.safetensors"}   # the subject-driven base (issue 36, docs/customisation.md)
MODEL_FOLDERS = {"vae": "vae", "base": "microcinema", "tsr": "microcinema", "custom": "microcinema"}   # subfolders of a ComfyUI models folder
TOY_SIZE = 128   # pixels: the shipped toy models' training resolution (the bundle's cpu128 profile; microcinema.resolution)
# Euler steps of the toy workflows' TSR pass (the base keeps 20): chosen on validation clips that share nothing
# with the evaluation's (bench/tsr_steps.py; docs/model_cards.md): the shipped TSR is nearest the truth at 2 steps
# (toy 25.42 dB, carphone 23.44) against 24.77 / 22.92 at 20; fewer steps return nearer the mean over its draws
TOY_TSR_STEPS = 2
