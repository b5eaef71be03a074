"""The shipped workflows, defined once here in API format; ``scripts/build_workflows.py`` writes both JSON formats.

File names the workflows expect (put the files in these ComfyUI folders, or pick yours in the UI):
models/microcinema/microcinema_base.safetensors, microcinema_tsr.safetensors; models/clip/
sd21_text_encoder.safetensors (SD2.1's OpenCLIP-H text encoder); models/vae/sd21_vae.safetensors (the SD2.1 /
SD1.x VAE); models/checkpoints/sd_xl_base_1.0.safetensors (keyframe workflow). The image workflows' keyframe,
microcinema_keyframe.png (workflows/keyframes/), is copied into ComfyUI's input folder by the pack.

The toy workflow runs on what the pack ships: the toy bundle in the pack's own models/ folder
(models/vae/microcinema_toy_vae.safetensors for the stock Load VAE, models/microcinema/microcinema_toy_base /
_tsr.safetensors), the MiniLM text encoder (Load MicroCinema Text Encoder, from a pip package) and the
held-out keyframe workflows/keyframes/toy_cat.png (the pack copies it into ComfyUI's input folder). The toy subject
workflow runs the same back end on the subject-driven toy model (models/microcinema/microcinema_toy_custom.safetensors)
from the held-out cut-out workflows/keyframes/toy_coffee_cutout.png (RGBA; Load Image -> InvertMask -> Subject
Conditioning (masked)).
"""
from __future__ import annotations

from microcinema_core.experiments.toy_files import FILES as TOY_FILES, TOY_SIZE, TOY_TSR_STEPS

BASE_CKPT = "microcinema_base.safetensors"
TSR_CKPT = "microcinema_tsr.safetensors"
TEXT_ENCODER = "sd21_text_encoder.safetensors"
VAE = "sd21_vae.safetensors"
SDXL_CKPT = "sd_xl_base_1.0.safetensors"
KEYFRAME_IMAGE = "microcinema_keyframe.png"  # workflows/keyframes/: an espresso cup (scikit-image's coffee, CC0)
PROMPT = "a red panda climbing a mossy tree trunk, soft morning light, shallow depth of field"  # SDXL keyframe + video
IMAGE_PROMPT = "an espresso cup on a wooden table, thin steam rising, the camera slowly circles the cup"
NEGATIVE = "static, still image, blurry, low quality, watermark, text"
# the embedded toy default (9 frames at 2 fps, TSR x4)
TOY_BASE_CKPT = TOY_FILES["base"]   # the toy bundle's file names and size: microcinema_core/experiments/toy_files.py
TOY_TSR_CKPT = TOY_FILES["tsr"]
TOY_VAE = TOY_FILES["vae"]
TOY_TEXT_ENCODER = "all-MiniLM-L6-v2"
TOY_KEYFRAME = "toy_cat.png"  # workflows/keyframes/toy_cat.png: a picture the toy models never saw in training
# the subject of the picture and a motion phrasing held out from training (toyworld/captions.py)
TOY_PROMPT = "a cat, the camera sweeps left"
# the subject-driven toy model (issue 36, docs/customisation.md): a held-out subject, cut out with its alpha
TOY_CUSTOM_CKPT = TOY_FILES["custom"]
TOY_SUBJECT = "toy_coffee_cutout.png"   # workflows/keyframes/: the toy world's cut-out of the (held-out) coffee cup
# "<subject> <where>" with the held-out scene's held-out phrase (toyworld/scenes.py), then a held-out motion phrase
TOY_SUBJECT_PROMPT = "a cup of coffee standing in the grey dust of the moon, the camera sweeps left"


def _node(class_type: str, title: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}


def _video_front(keyframe_source: list, prompt_text: str = IMAGE_PROMPT) -> dict:
    """Text encoder, VAE, base model, prompts and keyframe conditioning (node ids 2-7)."""
    return {
        "2": _node("CLIPLoader", "SD2.1 text encoder", clip_name=TEXT_ENCODER, type="stable_diffusion"),
        "3": _node("VAELoader", "SD2.1 VAE", vae_name=VAE),
        "4": _node("MicroCinemaModelLoader", "Load MicroCinema Model", ckpt_name=BASE_CKPT, dtype="auto"),
        "5": _node("CLIPTextEncode", "Prompt", text=prompt_text, clip=["2", 0]),
        "6": _node("CLIPTextEncode", "Negative prompt", text=NEGATIVE, clip=["2", 0]),
        "7": _node("MicroCinemaKeyframeConditioning", "Keyframe Conditioning", positive=["5", 0],
                   negative=["6", 0], vae=["3", 0], keyframe=keyframe_source, width=320, height=320, frames=9),
    }


def _video_back(*, seed: int, steps: int, cfg: float, tsr_ckpt: str, prefix: str, toy: bool = False) -> dict:
    """Noise prior -> stock KSampler -> TSR (one pass, 2 -> 8 fps) -> VAE Decode -> Save Video (node ids 20-25);
    reads the model (4), text encoder (2), VAE (3) and conditioning (7) of the front. The TSR samples with the
    base's ``steps``, except on the toy model (``TOY_TSR_STEPS``, measured)."""
    return {
        "20": _node("MicroCinemaNoisePrior", "Appearance Noise Prior", model=["4", 0],
                    gamma=0.02, prior_lambda=-1.0, positive=["7", 0]),
        "21": _node("KSampler", "KSampler (euler)", model=["20", 0], seed=seed,
                    steps=steps, cfg=cfg, sampler_name="euler", scheduler="normal",
                    positive=["7", 0], negative=["7", 1], latent_image=["7", 2], denoise=1.0),
        "22": _node("MicroCinemaTSRModelLoader", "Load TSR Model (toy)" if toy else "Load TSR Model",
                    ckpt_name=tsr_ckpt, dtype="auto"),
        "23": _node("MicroCinemaTSRInterpolateLatent", "TSR Interpolate (2 -> 8 fps)", tsr_model=["22", 0],
                    clip=["2", 0], passes=1, seed=0, steps=TOY_TSR_STEPS if toy else steps, cfg=1.0, gamma=0.02,
                    prior_lambda=-1.0, pairs_per_batch=8, video_latent=["21", 0]),
        "24": _node("VAEDecode", "VAE Decode", samples=["23", 0], vae=["3", 0]),
        "25": _node("MicroCinemaSaveVideo", "Save Video (MicroCinema)", images=["24", 0], fps=8.0, format="mp4",
                    filename_prefix=prefix, quality=18),
    }


def image_to_video() -> dict:
    """(b) An image from disk -> MicroCinema (one-box sampler) -> mp4 at 2 fps."""
    prompt = {"1": _node("LoadImage", "Keyframe image", image=KEYFRAME_IMAGE)}
    prompt.update(_video_front(["1", 0]))
    prompt.update({
        "8": _node("MicroCinemaSampler", "MicroCinema Sampler", model=["4", 0], positive=["7", 0],
                   negative=["7", 1], latent=["7", 2], seed=42, steps=50, cfg=7.5, gamma=0.02, prior_lambda=-1.0,
                   sampler_name="euler", scheduler="normal"),
        "9": _node("VAEDecode", "VAE Decode", samples=["8", 0], vae=["3", 0]),
        "10": _node("MicroCinemaSaveVideo", "Save Video (MicroCinema)", images=["9", 0], fps=2.0, format="mp4",
                    filename_prefix="MicroCinema/image_to_video", quality=18),
    })
    return prompt


def sdxl_keyframe_to_video() -> dict:
    """(a) SDXL keyframe -> MicroCinema (stock KSampler + noise prior) -> TSR x4 -> mp4 at 8 fps."""
    prompt = {
        "11": _node("CheckpointLoaderSimple", "SDXL checkpoint", ckpt_name=SDXL_CKPT),
        "12": _node("CLIPTextEncode", "SDXL prompt", text=PROMPT, clip=["11", 1]),
        "13": _node("CLIPTextEncode", "SDXL negative", text=NEGATIVE, clip=["11", 1]),
        "14": _node("EmptyLatentImage", "SDXL latent", width=1024, height=1024, batch_size=1),
        "15": _node("KSampler", "SDXL KSampler", model=["11", 0], seed=7,
                    steps=30, cfg=7.0, sampler_name="dpmpp_2m", scheduler="karras", positive=["12", 0],
                    negative=["13", 0], latent_image=["14", 0], denoise=1.0),
        "16": _node("VAEDecode", "SDXL decode (keyframe)", samples=["15", 0], vae=["11", 2]),
    }
    prompt.update(_video_front(["16", 0], PROMPT))
    prompt.update(_video_back(seed=42, steps=50, cfg=7.5, tsr_ckpt=TSR_CKPT,
                              prefix="MicroCinema/sdxl_keyframe_to_video"))
    return prompt


GAMMAS = (-0.01, 0.02, 0.05)


def gamma_sweep() -> dict:
    """(c) One keyframe, one seed, three gammas (motion amplitude): larger gamma -> smaller motion."""
    prompt = {"1": _node("LoadImage", "Keyframe image", image=KEYFRAME_IMAGE)}
    prompt.update(_video_front(["1", 0]))
    for i, gamma in enumerate(GAMMAS):
        base = 30 + 10 * i
        tag = f"{gamma:+.2f}".replace("+", "p").replace("-", "m")
        prompt.update({
            str(base): _node("MicroCinemaNoisePrior", f"Noise prior gamma {gamma:+.2f}", model=["4", 0],
                             gamma=gamma, prior_lambda=-1.0, positive=["7", 0]),
            str(base + 1): _node("KSampler", f"KSampler gamma {gamma:+.2f}", model=[str(base), 0], seed=42,
                                 steps=50, cfg=7.5, sampler_name="euler",
                                 scheduler="normal", positive=["7", 0], negative=["7", 1], latent_image=["7", 2],
                                 denoise=1.0),
            str(base + 2): _node("VAEDecode", "VAE Decode", samples=[str(base + 1), 0], vae=["3", 0]),
            str(base + 3): _node("MicroCinemaSaveVideo", f"Save gamma {gamma:+.2f}", images=[str(base + 2), 0],
                                 fps=2.0, format="mp4", filename_prefix=f"MicroCinema/gamma_sweep_{tag}", quality=18),
        })
    return prompt


def toy_image_to_video() -> dict:
    """(d) The embedded toy default: the shipped cat keyframe -> toy MicroCinema (stock KSampler after the noise
    prior) -> one TSR pass -> 33 frames at 8 fps, TOY_SIZE px square, on the files the pack ships; the
    settings (20 Euler steps, CFG 1.25, gamma 0.02, seed 0; the TSR at TOY_TSR_STEPS) are the ones
    experiments/evaluate.py reports on (the shipped base's empty prompt means "no motion", so CFG scales the motion;
    CFG and the TSR's steps chosen on validation sets, docs/toy_results.md)."""
    return {
        "1": _node("LoadImage", "Keyframe image (held-out cat)", image=TOY_KEYFRAME),
        "2": _node("MicroCinemaTextEncoderLoader", "Load Text Encoder (MiniLM)",
                   text_encoder=TOY_TEXT_ENCODER),
        "3": _node("VAELoader", "Toy VAE", vae_name=TOY_VAE),
        "4": _node("MicroCinemaModelLoader", "Load MicroCinema Model (toy)", ckpt_name=TOY_BASE_CKPT, dtype="auto"),
        "5": _node("CLIPTextEncode", "Prompt (a motion)", text=TOY_PROMPT, clip=["2", 0]),
        "6": _node("CLIPTextEncode", "Negative prompt (empty)", text="", clip=["2", 0]),
        "7": _node("MicroCinemaKeyframeConditioning", "Keyframe Conditioning", positive=["5", 0],
                   negative=["6", 0], vae=["3", 0], keyframe=["1", 0], width=TOY_SIZE, height=TOY_SIZE, frames=9),
        **_video_back(seed=0, steps=20, cfg=1.25, tsr_ckpt=TOY_TSR_CKPT, prefix="MicroCinema/toy_image_to_video",
                      toy=True),
    }


def toy_subject_to_video() -> dict:
    """(e) Subject-driven video on the toy models: a cut-out picture of a held-out subject (RGBA; Load Image's MASK,
    inverted to 1 = subject) -> Subject Conditioning (masked) (the reference as training made it: the cut-out centred
    on grey at 0.85 of the frame) -> the toy workflow's back end (noise prior, stock KSampler, one TSR pass, decode, save) on
    the subject-driven toy model; settings as the toy image-to-video workflow (20 steps, CFG 1.25, gamma 0.02)."""
    return {
        "1": _node("LoadImage", "Subject image (held-out cup)", image=TOY_SUBJECT),
        "2": _node("MicroCinemaTextEncoderLoader", "Load Text Encoder (MiniLM)", text_encoder=TOY_TEXT_ENCODER),
        "3": _node("VAELoader", "Toy VAE", vae_name=TOY_VAE),
        "4": _node("MicroCinemaModelLoader", "Load Model (toy, subject)", ckpt_name=TOY_CUSTOM_CKPT, dtype="auto"),
        "5": _node("CLIPTextEncode", "Prompt (subject, place, motion)", text=TOY_SUBJECT_PROMPT, clip=["2", 0]),
        "6": _node("CLIPTextEncode", "Negative prompt (empty)", text="", clip=["2", 0]),
        "7": _node("MicroCinemaSubjectConditioningMasked", "Subject Conditioning (masked)", positive=["5", 0],
                   negative=["6", 0], vae=["3", 0], subject=["1", 0], subject_mask=["8", 0], width=TOY_SIZE,
                   height=TOY_SIZE, frames=9, background=0.5),
        "8": _node("InvertMask", "Invert Mask (1 = subject)", mask=["1", 1]),
        "9": _node("PreviewImage", "The reference the model sees", images=["7", 3]),
        **_video_back(seed=0, steps=20, cfg=1.25, tsr_ckpt=TOY_TSR_CKPT, prefix="MicroCinema/toy_subject_to_video",
                      toy=True),
    }


WORKFLOWS = {"image_to_video": image_to_video, "sdxl_keyframe_to_video": sdxl_keyframe_to_video,
             "gamma_sweep": gamma_sweep, "toy_image_to_video": toy_image_to_video,
             "toy_subject_to_video": toy_subject_to_video}


# == How each UI file is drawn (scripts/build_workflows.py) ==========================================================
# Left to right in the order data flows: keyframe + models -> prompt + keyframe conditioning -> noise prior +
# sampler -> TSR -> decode + save. A layout is a list of columns; a column is a list of groups stacked top to
# bottom; a group has a title and sub-columns (side by side), each a list of rows; a row is a node id or a list
# of ids stacked tightly; "pitch" (px) puts a group's rows at a fixed spacing so rows line up across columns.
# "note" is the Note node (NOTES). Sized so that fit-to-view at 1600x1000 draws every node in full detail.

def _group(title: str, *cols, pitch: int | None = None) -> dict:
    return {"title": title, "cols": [list(c) for c in cols], "pitch": pitch}


_GAMMA_TEXT = ("gamma (Noise Prior{where}): the motion knob. Larger = smaller, steadier motion; 0.02 is the "
               "paper's, -0.01 gives large motion, 0.05 small. Range -0.1..0.1.")
TOY_GAMMA_TEXT = ("On these toy models gamma moves the motion only a little: from -0.1 to 0.1 the mean motion "
                  "falls by about 10 % (docs/toy_results.md); a full-size model follows the paper (larger gamma, "
                  "visibly smaller and steadier motion).")
_SIZE_TEXT = ("frames / width / height (Keyframe Conditioning): the base model is trained on {frames} frames at "
              "2 fps, {size}; sizes are multiples of 64.")
_TSR_TEXT = "TSR passes: 1 = 9 -> 33 frames (8 fps), 2 = 129 frames (32 fps); the Save Video fps follows."
TOY_TSR_TEXT = (f"TSR steps: {TOY_TSR_STEPS} on the toy TSR, measured nearer the true in-between frames than 20 (more "
                "steps draw farther from them) and 10x faster; a full-size TSR samples with the base's steps.")

NOTES = {
    "image_to_video": "\n\n".join((
        "What to change",
        _GAMMA_TEXT.format(where=" inside MicroCinema Sampler"),
        _SIZE_TEXT.format(frames=9, size="320x320 as the paper"),
        "Keyframe: any picture (Load Image); the prompt should describe it and say how it moves.")),
    "sdxl_keyframe_to_video": "\n\n".join((
        "What to change",
        "Prompt: write it in both prompt boxes (SDXL makes the keyframe, MicroCinema animates it).",
        _GAMMA_TEXT.format(where=" and TSR"),
        _SIZE_TEXT.format(frames=9, size="320x320 as the paper"),
        _TSR_TEXT)),
    "gamma_sweep": "\n\n".join((
        "What to change",
        "One keyframe, one seed, three gammas: compare the three videos.",
        _GAMMA_TEXT.format(where=" nodes, one per row"),
        _SIZE_TEXT.format(frames=9, size="320x320 as the paper"))),
    "toy_image_to_video": "\n\n".join((
        "What to change",
        "Runs on what the pack ships (toy models, 128 px, MiniLM text encoder): seconds on a CPU.",
        _GAMMA_TEXT.format(where=" and TSR"),
        TOY_GAMMA_TEXT,
        _SIZE_TEXT.format(frames=9, size="128x128 px (keep 128 for the toy models)"),
        TOY_TSR_TEXT,
        "Prompt: the toy world knows a subject and a motion (\"the camera sweeps left\", \"zooms in\").")),
    "toy_subject_to_video": "\n\n".join((
        "What to change",
        "Subject: any picture of ONE subject (Load Image). With transparency, its mask (through Invert Mask: Load "
        "Image's mask is 1 - alpha) cuts the subject out onto a plain grey ('background'); for a photo without "
        "transparency the mask is all 1 and the whole picture is used, padded to a square (as the plain "
        "'MicroCinema Subject Conditioning', which has no mask). A segmentation node's mask (1 = subject) goes "
        "straight into subject_mask. The preview shows what the model sees.",
        "Prompt: the subject, where it is, then a motion (\"a cup of coffee on the moon, the camera sweeps left\").",
        "Runs on the subject-driven toy model (128 px, MiniLM text encoder): seconds on a CPU.",
        _GAMMA_TEXT.format(where=" and TSR"),
        _SIZE_TEXT.format(frames=9, size="128x128 px (keep 128 for the toy models)").replace(
            "Keyframe Conditioning", "Subject Conditioning"),
        TOY_TSR_TEXT)),
}

LAYOUTS = {
    "image_to_video": [
        [_group("1  Keyframe + models", ["1", "2", "3", "4"])],
        [_group("2  Prompt + conditioning", ["5", "6", "7"]), _group("", ["note"])],
        [_group("3  Sample", ["8"])],
        [_group("4  Decode + save", ["9", "10"])],
    ],
    "sdxl_keyframe_to_video": [
        [_group("1  SDXL keyframe", ["11", "12", "13"], ["14", "15", "16"]),
         _group("2  Models + prompt", ["2", "3", "4"], ["5", "6"])],
        [_group("3  Conditioning + sample", ["7", "20", "21"])],
        [_group("4  TSR 2 -> 8 fps", ["22", "23"]), _group("", ["note"])],
        [_group("5  Decode + save", ["24", "25"])],
    ],
    "gamma_sweep": [
        [_group("1  Keyframe + models", ["1", "2", "3", "4"])],
        [_group("2  Prompt + conditioning", ["5", "6", "7"]), _group("", ["note"])],
        [_group("3  Noise prior (gamma)", ["30", "40", "50"], pitch=330)],
        [_group("4  Sample (same seed)", ["31", "41", "51"], pitch=330)],
        [_group("5  Decode + save", [["32", "33"], ["42", "43"], ["52", "53"]], pitch=330)],
    ],
    "toy_image_to_video": [
        [_group("1  Keyframe + models", ["1", "2", "3", "4"])],
        [_group("2  Prompt + conditioning", ["5", "6", "7"]), _group("", ["note"])],
        [_group("3  Noise prior + sample", ["20", "21"])],
        [_group("4  TSR 2 -> 8 fps", ["22", "23"])],
        [_group("5  Decode + save", ["24", "25"])],
    ],
    "toy_subject_to_video": [
        [_group("1  Subject + models", ["1", "8", "2", "3", "4"])],
        [_group("2  Prompt + conditioning", ["5", "6", "7"]), _group("", ["note"])],
        [_group("3  Noise prior + sample", ["20", "21", "9"])],
        [_group("4  TSR 2 -> 8 fps", ["22", "23"])],
        [_group("5  Decode + save", ["24", "25"])],
    ],
}
