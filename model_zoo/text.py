"""Real English text available offline: the topics of Python's own help (pydoc_data.topics, ~465 KB),
and a byte-level BPE tokenizer trained on it with the `tokenizers` package."""

from __future__ import annotations


import numpy as np

from edgekit.errors import MissingDependency
from edgekit.tokenizer import load_tokenizer  # noqa: F401  (the torch-free loader; importable from here too)

HELD_OUT = 0.1  # the last 10% of topics (sorted by name) are validation text


def pydoc_text(split: str = "train") -> str:
    from pydoc_data.topics import topics

    names = sorted(topics)
    cut = int(len(names) * (1 - HELD_OUT))
    chosen = {"train": names[:cut], "val": names[cut:], "all": names}[split]
    return "\n\n".join(topics[n].strip() for n in chosen)


def train_tokenizer(vocab_size: int = 1024, text: str | None = None):
    """A byte-level BPE tokenizer trained on the training split."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError as e:
        raise MissingDependency("tokenizers", "export", "training the LLM tokenizer") from e
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([text or pydoc_text("train")], trainer=trainer)
    return tok


def encode_split(tok, split: str) -> np.ndarray:
    return np.array(tok.encode(pydoc_text(split)).ids, dtype=np.int64)
