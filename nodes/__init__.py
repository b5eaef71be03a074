"""ComfyUI glue of MicroCinema: every node file's mappings, merged into the two dicts ComfyUI reads.

Add a node file by importing it here and appending it to ``_NODE_MODULES``; a duplicate node id is an error.
On a ComfyUI host, loading the pack also appends its own ``models/vae`` and ``models/microcinema`` folders to
ComfyUI's model folders (``model_files.register_pack_model_folders``): the shipped files show up in the loaders.
"""
import importlib.util

from . import video_output

if importlib.util.find_spec("comfy") is not None:
    from . import inflate, keyframe, loaders, noise_prior, prior_ancestral, sampler, text_encoder, tsr
    from .example_inputs import provide_example_inputs
    from .model_files import register_pack_model_folders

    register_pack_model_folders()
    provide_example_inputs()  # the toy workflow's keyframe into ComfyUI's input folder (example_inputs.py)
    _NODE_MODULES = (loaders, text_encoder, inflate, keyframe, noise_prior, prior_ancestral, sampler, tsr,
                     video_output)
else:  # imported outside a ComfyUI host (e.g. pytest setting up the repo package): no model nodes
    _NODE_MODULES = (video_output,)

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
for _module in _NODE_MODULES:
    _duplicates = NODE_CLASS_MAPPINGS.keys() & _module.NODE_CLASS_MAPPINGS.keys()
    if _duplicates:
        raise RuntimeError(f"{_module.__name__} registers node ids already taken: {sorted(_duplicates)}")
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
