"""MicroCinema Subject Conditioning and its "(masked)" twin (issue 36, part 3), in-process on the 2024 host's
``comfy`` package, tiny models.

* The reference preparation (``nodes/helpers/subject_reference.py``) is the training's: with a mask (the masked
  node) the subject's box, masked, centred on the ``background`` grey with its longer side 0.85 of the frame (as the
  toy world's plain references, ``toyworld/customisation.py``); without one (the plain node, or a mask of 1
  everywhere) the picture padded with its border's mean colour, nothing cropped
  (``training/customisation_data.pad_resize``, what real references get).
* Every input of both nodes is required (the 2024 host validates only what required inputs lead to: issue 38).
* Every bad input gets an error naming the input and the fix.
* The node's outputs: the reference latent in both conditionings (as Keyframe Conditioning attaches a keyframe),
  marked as a subject reference; sampling it with an image-to-video model, or a keyframe with a subject-driven
  model, is refused when the sampler runs.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pack_inprocess import load_pack_single_threaded, text_conditioning, tiny_model

SMALL = dict(channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,))


@pytest.fixture(scope="module")
def pack():
    yield from load_pack_single_threaded()


@pytest.fixture(scope="module")
def ref(pack):
    return pack.nodes.helpers.subject_reference


@pytest.fixture(scope="module")
def vae(pack):
    """A stock ComfyUI VAE (TAESD layout, random weights, the toy VAE's kind)."""
    import comfy.sd

    from microcinema_core.vae.taesd_layout import ToyVAE

    torch.manual_seed(0)
    state = ToyVAE().comfy_state_dict(torch.float32)
    state["vae_scale"] = torch.tensor(0.18215)
    return comfy.sd.VAE(sd=state)


def two_colour_subject(h=100, w=60, box=(20, 10, 80, 40)):
    """A green picture with a red rectangle (the subject) and its mask (1 inside the rectangle)."""
    image = torch.zeros(3, h, w)
    image[1] = 1.0
    top, left, bottom, right = box
    image[:, top:bottom, left:right] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    mask = torch.zeros(h, w)
    mask[top:bottom, left:right] = 1.0
    return image, mask


def not_grey_box(out: torch.Tensor, grey: float) -> tuple:
    """(top, left, bottom, right) of the pixels of ``[3, H, W]`` that are not the plain grey."""
    differs = (out - grey).abs().amax(dim=0) > 1e-3
    rows, cols = differs.any(dim=1).nonzero(), differs.any(dim=0).nonzero()
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


# -- the reference preparation ------------------------------------------------------------------------------
def test_a_masked_subject_is_centred_on_grey_at_0_85_of_the_frame(ref):
    image, mask = two_colour_subject()
    out = ref.prepare_reference(image, mask, 128, 128, background=0.3)
    assert out.shape == (3, 128, 128)
    top, left, bottom, right = not_grey_box(out, 0.3)
    assert bottom - top == round(0.85 * 128)                        # the box is 60 x 30: its longer side 0.85
    assert right - left == round(30 * 0.85 * 128 / 60)
    assert abs((top + bottom) / 2 - 64) <= 1 and abs((left + right) / 2 - 64) <= 1   # centred
    assert float(out[1].max()) <= 0.3 + 1e-6                          # the masked-out green never shows
    inner = out[:, top + 2:bottom - 2, left + 2:right - 2]
    assert torch.allclose(inner, torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand_as(inner), atol=1e-5)
    assert torch.all(out[:, :top] == 0.3) and torch.all(out[:, :, :left] == 0.3)


def test_a_non_square_frame_fits_the_subject_inside_0_85_of_each_side(ref):
    image, mask = two_colour_subject(box=(40, 5, 60, 55))             # a 20 x 50 box: wide
    out = ref.prepare_reference(image, mask, 192, 64, background=0.5)
    top, left, bottom, right = not_grey_box(out, 0.5)
    assert out.shape == (3, 64, 192)
    assert max((bottom - top) / 64, (right - left) / 192) == pytest.approx(0.85, abs=0.02)


def test_the_cut_out_matches_the_toy_worlds_plain_reference(ref):
    """The toy world's plain-grey reference (``paste`` at ``subject_extent(cutout, REFERENCE_SIZE)``, centred) and
    the node's preparation of the same cut-out and alpha agree (up to the resampling: grid_sample vs area)."""
    from microcinema_core.toyworld.customisation import REFERENCE_SIZE, subject_extent
    from microcinema_core.toyworld.render import paste, soft_ellipse
    from microcinema_core.toyworld.subjects import MASK_SOFTNESS, Cutout

    assert ref.REFERENCE_SIZE == REFERENCE_SIZE
    y, x = torch.meshgrid(torch.linspace(0, 1, 90), torch.linspace(0, 1, 70), indexing="ij")
    picture = torch.stack([x, y, 0.5 * (x + y)])                     # smooth, so resampling differs little
    alpha = soft_ellipse(90, 70, MASK_SOFTNESS)
    cutout = Cutout("test", picture, alpha, "a test")
    width, _ = subject_extent(cutout, REFERENCE_SIZE)
    want = paste(torch.full((1, 3, 128, 128), 0.6), picture, alpha, np.zeros((1, 2)), width)[0]
    got = ref.prepare_reference(picture, alpha[0], 128, 128, background=0.6)
    assert (got - want).abs().mean().item() < 0.01
    assert (got - want).abs().max().item() < 0.35                   # the soft edge, resampled two ways


def test_without_a_mask_the_picture_is_padded_with_its_border_mean_as_training_pads_real_references(ref):
    from microcinema_core.training.customisation_data import pad_resize

    rng = np.random.default_rng(0)
    for h, w in ((40, 100), (150, 90), (64, 64)):
        picture = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        picture[h // 2 - 5:h // 2 + 5, w // 2 - 5:w // 2 + 5] = (255, 0, 0)   # "the subject"
        want = pad_resize(picture, 128)
        got = ref.prepare_reference(torch.from_numpy(picture).permute(2, 0, 1).float() / 255, None, 128, 128)
        assert got.shape == (3, 128, 128)
        assert (got - want).abs().max().item() < 1e-5, (h, w)


def test_no_mask_keeps_the_whole_subject(ref):
    """A wide picture whose subject touches its left and right edges: nothing is cropped, the pad is above and below."""
    picture = torch.full((3, 50, 200), 0.2)
    picture[0, :, :] = torch.linspace(0, 1, 200)                     # content across the whole width
    out = ref.prepare_reference(picture, None, 128, 128)
    border = ref.border_mean(picture)
    assert torch.allclose(out[:, 0, 64], border, atol=1e-4) and torch.allclose(out[:, -1, 64], border, atol=1e-4)
    middle = out[0, 64]
    assert middle[0] < 0.05 and middle[-1] > 0.95                    # both ends of the picture are in the frame


def test_a_mask_of_ones_is_no_mask_and_an_opaque_alpha_is_dropped(pack, ref, vae):
    """Load Image of a JPEG through InvertMask (a mask of 1 everywhere, any size) into the masked node gives the plain
    node's padded reference; an RGBA IMAGE goes into the plain node when its alpha is opaque everywhere (a cut-out is
    refused there, naming the masked node: test_bad_subjects_and_masks...)."""
    subject_nodes = pack.nodes.nodes_subject
    image, mask = two_colour_subject()
    plain = ref.prepare_reference(image, None, 64, 64)
    assert torch.equal(ref.prepare_reference(image, torch.ones(64, 64), 64, 64), plain)   # any size
    assert subject_nodes.check_mask(torch.ones(1, 64, 64), image) is None
    text = [[torch.zeros(1, 77, 384), {}]]
    picture = image.movedim(0, -1)[None]
    (*_, from_plain) = subject_nodes.MicroCinemaSubjectConditioning().encode(text, text, vae, picture, 64, 64, 9)
    (*_, from_masked) = subject_nodes.MicroCinemaSubjectConditioningMasked().encode(
        text, text, vae, picture, torch.ones(1, 64, 64), 64, 64, 9, 0.5)
    assert torch.equal(from_plain, from_masked) and torch.equal(from_plain[0].movedim(-1, 0), plain)
    opaque = torch.cat([picture, torch.ones(1, 100, 60, 1)], dim=-1)
    (*_, from_rgba) = subject_nodes.MicroCinemaSubjectConditioning().encode(text, text, vae, opaque, 64, 64, 9)
    assert torch.equal(from_rgba, from_plain)


# -- bad inputs: each names the input and the fix ------------------------------------------------------------
def bad_cases():
    image, mask = two_colour_subject()
    picture = image.movedim(0, -1)[None]
    nan_image = picture.clone()
    nan_image[0, 3, 3, 0] = float("nan")
    nan_mask = mask[None].clone()
    nan_mask[0, 0, 0] = float("nan")
    inverted = 1 - mask[None]
    speck = torch.zeros(1, 100, 60)
    speck[0, 50:53, 30:33] = 1.0
    cut_out = torch.cat([picture, mask[None, :, :, None]], dim=-1)       # RGBA with transparency
    # subject, mask (None: the plain node), words
    return {
        "a batch of subjects": (picture.expand(2, -1, -1, -1), None,
                                r"'subject' is a batch of 2 images; a video shows ONE subject.*ImageFromBatch"),
        "not an IMAGE": (torch.rand(1, 64, 64), None, r"'subject' must be an IMAGE \[batch, height, width, 3\]"),
        "a 4x4 picture": (torch.rand(1, 4, 4, 3), None, r"'subject' is 4x4 px; it must be at least 8x8"),
        "NaN pixels": (nan_image, None, r"'subject' has NaN in 1 of its .* the node feeding 'subject'"),
        "several masks": (picture, mask[None].expand(3, -1, -1),
                          r"'subject_mask' holds 3 masks .* ONE subject: combine them .*MaskComposite"),
        "NaN in the mask": (picture, nan_mask, r"'subject_mask' has NaN in 1 of its"),
        "an empty mask": (picture, torch.zeros(1, 64, 64),
                          r"'subject_mask' is empty: no pixel is above 0.05.*InvertMask.*for a photo use "
                          r"'MicroCinema Subject Conditioning', which takes no mask"),
        "a mask of another size": (picture, torch.nn.functional.pad(mask, (0, 4))[None],
                                   r"'subject_mask' is 64x100 px but 'subject' is 60x100 px: the mask must be the "
                                   r"subject picture's own"),
        "an inverted mask": (picture, inverted, r"'subject_mask' covers the whole border .* looks inverted.*InvertMask"),
        "a speck of a subject": (picture, speck, r"the subject in 'subject_mask' is only 3x3 px"),
        "a mask of the wrong rank": (picture, torch.ones(1, 1, 100, 60), r"'subject_mask' must be a MASK"),
        "a cut-out into the node without a mask": (cut_out, None, r"'subject' has transparency .*use 'MicroCinema "
                                                                  r"Subject Conditioning \(masked\)'.*InvertMask"),
        "a batch of subjects, masked": (picture.expand(2, -1, -1, -1), mask[None], r"'subject' is a batch of 2"),
    }


@pytest.mark.parametrize("case", sorted(bad_cases()))
def test_bad_subjects_and_masks_are_refused_naming_the_input_and_the_fix(pack, vae, case):
    subject, mask, words = bad_cases()[case]
    nodes = pack.nodes.nodes_subject
    text = [[torch.zeros(1, 77, 384), {}]]
    with pytest.raises(ValueError, match=words):
        if mask is None:
            nodes.MicroCinemaSubjectConditioning().encode(text, text, vae, subject, 64, 64, 9)
        else:
            nodes.MicroCinemaSubjectConditioningMasked().encode(text, text, vae, subject, mask, 64, 64, 9, 0.5)


def test_sizes_and_background_are_checked_before_anything_runs(pack, vae):
    nodes = pack.nodes.nodes_subject
    plain, masked = nodes.MicroCinemaSubjectConditioning, nodes.MicroCinemaSubjectConditioningMasked
    validate = masked.VALIDATE_INPUTS
    assert validate(width=128, height=128, background=0.5) is True
    assert validate(width=None, height=None, background=None) is True          # linked: checked when run
    assert plain.VALIDATE_INPUTS(width=128, height=64) is True
    for check in (validate, plain.VALIDATE_INPUTS):
        assert "width 100 is not a multiple of 64 px; use 64 or 128" in check(width=100, height=128)
        assert "height is 4096" in check(width=128, height=4096)
    for value in (1.5, -0.1, float("nan")):
        assert "background is" in validate(width=128, height=128, background=value)
    text = [[torch.zeros(1, 77, 384), {}]]
    picture, ones = torch.rand(1, 64, 64, 3), torch.ones(1, 64, 64)
    with pytest.raises(ValueError, match=r"background is nan: it must be a grey level in 0..1"):
        masked().encode(text, text, vae, picture, ones, 64, 64, 9, float("nan"))
    with pytest.raises(ValueError, match="frames must be at least 2"):
        masked().encode(text, text, vae, picture, ones, 64, 64, 1, 0.5)
    with pytest.raises(ValueError, match="frames must be at least 2"):
        plain().encode(text, text, vae, picture, 64, 64, 1)


def test_a_taesdxl_vae_is_refused_as_in_keyframe_conditioning(pack):
    import comfy.sd

    from microcinema_core.vae.taesd_layout import ToyVAE

    state = ToyVAE().comfy_state_dict(torch.float32)
    state["vae_scale"] = torch.tensor(0.13025)
    text = [[torch.zeros(1, 77, 384), {}]]
    with pytest.raises(ValueError, match=r"'vae' is TAESDXL"):
        pack.nodes.nodes_subject.MicroCinemaSubjectConditioning().encode(
            text, text, comfy.sd.VAE(sd=state), torch.rand(1, 64, 64, 3), 64, 64, 9)


# -- the node's outputs and the sampling-time check ----------------------------------------------------------
def test_node_interface(pack):
    """Two nodes, every input required: the plain one (no mask) and the masked one (mask + background grey)."""
    nodes = pack.nodes.nodes_subject
    names = pack.nodes.NODE_DISPLAY_NAME_MAPPINGS
    inputs = {nodes.MicroCinemaSubjectConditioning: ["positive", "negative", "vae", "subject", "width", "height",
                                                     "frames"],
              nodes.MicroCinemaSubjectConditioningMasked: ["positive", "negative", "vae", "subject", "subject_mask",
                                                           "width", "height", "frames", "background"]}
    for node, want in inputs.items():
        spec = node.INPUT_TYPES()
        assert list(spec) == ["required"] and list(spec["required"]) == want, node
        for name, value in spec["required"].items():
            assert value[1].get("tooltip"), name
        assert node.RETURN_TYPES == ("CONDITIONING", "CONDITIONING", "LATENT", "IMAGE")
        assert len(node.OUTPUT_TOOLTIPS) == 4 and all(node.OUTPUT_TOOLTIPS)
        assert node.CATEGORY == "MicroCinema" and node.DESCRIPTION
    masked = nodes.MicroCinemaSubjectConditioningMasked.INPUT_TYPES()["required"]
    assert masked["subject_mask"][0] == "MASK" and "InvertMask" in masked["subject_mask"][1]["tooltip"]
    assert "(masked)" in nodes.MicroCinemaSubjectConditioning.INPUT_TYPES()["required"]["subject"][1]["tooltip"]
    assert names["MicroCinemaSubjectConditioning"] == "MicroCinema Subject Conditioning"
    assert names["MicroCinemaSubjectConditioningMasked"] == "MicroCinema Subject Conditioning (masked)"


def test_the_reference_rides_in_both_conditionings_marked_as_a_subject(pack, ref, vae):
    cm = pack.nodes.helpers.comfy_model
    image, mask = two_colour_subject()
    positive, negative = text_conditioning(1), text_conditioning(2)
    out_pos, out_neg, latent, reference = pack.nodes.nodes_subject.MicroCinemaSubjectConditioningMasked().encode(
        positive, negative, vae, image.movedim(0, -1)[None], mask[None], 128, 64, 9, 0.4)
    want = ref.prepare_reference(image, mask, 128, 64, 0.4)
    assert reference.shape == (1, 64, 128, 3) and torch.equal(reference[0].movedim(-1, 0), want)
    assert latent["samples"].shape == (9, 4, 8, 16) and not latent["samples"].any()
    encoded = vae.encode(reference).float()
    for got, text in ((out_pos, positive), (out_neg, negative)):
        ((cond, options),) = got
        assert torch.equal(cond, text[0][0]) and torch.equal(options["pooled_output"], text[0][1]["pooled_output"])
        assert torch.equal(options[cm.KEYFRAME_KEY], encoded)
        assert options[cm.APPEARANCE_SOURCE_KEY] == "subject"
    assert cm.APPEARANCE_SOURCE_KEY not in positive[0][1]                     # the inputs are not changed


def test_sampling_checks_the_conditioning_against_the_models_appearance_input(pack):
    """A subject reference into an image-to-video model, or a keyframe into a subject-driven one: a clear error when
    the sampler runs; the matching pairs sample."""
    ps = pack.nodes.helpers.prior_patch
    wrap = pack.nodes.helpers.comfy_model.wrap_model
    sampler = pack.nodes.nodes_sampler.MicroCinemaSampler()
    raw = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    latent = {"samples": torch.zeros(3, 4, 8, 8)}
    models = {"keyframe": wrap(tiny_model("base", **SMALL)),
              "subject": wrap(tiny_model("base", appearance_input="subject", **SMALL))}
    for model_input, model in models.items():
        for source in ("keyframe", "subject"):
            positive = ps.with_keyframe(text_conditioning(1), raw, source=source)
            negative = ps.with_keyframe(text_conditioning(2), raw, source=source)
            run = lambda: sampler.sample(model, positive, negative, latent, 0, 1, 2.0, 0.02, -1.0, "euler", "normal")
            if source == model_input:
                (out,) = run()
                assert out["samples"].shape == (3, 4, 8, 8)
            elif source == "subject":
                with pytest.raises(ValueError, match=r"comes from 'MicroCinema Subject Conditioning', but the model is "
                                                     r"an image-to-video model.*'reference' output"):
                    run()
            else:
                with pytest.raises(ValueError, match=r"subject-driven \(customisation\) model .*not a keyframe.*"
                                                     r"'MicroCinema Subject Conditioning'"):
                    run()


def test_a_conditioning_without_the_marker_is_a_keyframe(pack):
    """Conditionings made before the marker (or by another pack's node) keep sampling an image-to-video model."""
    cm = pack.nodes.helpers.comfy_model
    config = tiny_model("base", **SMALL).config
    cm.check_appearance_source(config, "keyframe")
    with pytest.raises(ValueError):
        cm.check_appearance_source(config.replace(appearance_input="subject"), "keyframe")
    cm.check_appearance_source(tiny_model("tsr", **SMALL).config, "keyframe")   # TSR: first/last frames


# -- the TRAINED model's video: nearer the reference subject than another subject's ---------------------------
# To be written after the toy customisation model is trained (issue 36: "the customisation workflow over HTTP on
# the real host with the shipped files makes a video whose frames are nearer the reference subject than another
# subject's"); it belongs with the host tests (tests/test_workflows_host.py, next to
# test_toy_subject_to_video_workflow) and skips while scripts.toy_standins.shipped_custom_file_present() is False.
