"""ComfyUI glue of MicroCinema: every node file's mappings, merged into the two dicts ComfyUI reads.

One file per node family, named as ComfyUI's own ``comfy_extras/nodes_*.py``: ``nodes_loaders``,
``nodes_text_encoder``, ``nodes_inflate``, ``nodes_keyframe``, ``nodes_subject`` (a subject reference for a
subject-driven model), ``nodes_noise_prior`` (the prior on a MODEL, a NOISE or a SAMPLER), ``nodes_sampler``,
``nodes_tsr``, ``nodes_save_video``; what they share is in ``helpers/``
(no node there). Add a node file by importing it here and appending it to ``_NODE_MODULES``; a duplicate node
id is an error.
On a ComfyUI host, loading the pack also appends its own ``models/vae`` and ``models/microcinema`` folders to
ComfyUI's model folders (``helpers/model_files.py``, ``register_pack_model_folders``): the shipped files show up
in the loaders.
"""
import importlib.util

from . import nodes_save_video

if importlib.util.find_spec("comfy") is not None:
    from . import (nodes_inflate, nodes_keyframe, nodes_loaders, nodes_noise_prior, nodes_sampler, nodes_subject,
                   nodes_text_encoder, nodes_tsr)
    from .helpers.example_inputs import provide_example_inputs
    from .helpers.model_files import register_pack_model_folders

    register_pack_model_folders()
    provide_example_inputs()  # the toy workflow's keyframe into ComfyUI's input folder (helpers/example_inputs.py)
    _NODE_MODULES = (nodes_loaders, nodes_text_encoder, nodes_inflate, nodes_keyframe, nodes_subject,
                     nodes_noise_prior, nodes_sampler, nodes_tsr, nodes_save_video)
else:  # imported outside a ComfyUI host (e.g. pytest setting up the repo package): no model nodes
    _NODE_MODULES = (nodes_save_video,)

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
for _module in _NODE_MODULES:
    _duplicates = NODE_CLASS_MAPPINGS.keys() & _module.NODE_CLASS_MAPPINGS.keys()
    if _duplicates:
        raise RuntimeError(f"{_module.__name__} registers node ids already taken: {sorted(_duplicates)}")
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
