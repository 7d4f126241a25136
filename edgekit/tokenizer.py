"""Loading an LLM artifact's tokenizer on the device side: needs the `tokenizers` package, never torch.

Training a tokenizer (export side) lives in ``edgekit.model_zoo.text``, which re-exports this loader.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import MissingDependency


def load_tokenizer(path: str | Path):
    """A ``tokenizers.Tokenizer`` from its JSON file (every LLM artifact ships ``tokenizer.json``)."""
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise MissingDependency("tokenizers", "device", "encoding prompts for LLM artifacts") from e
    return Tokenizer.from_file(str(path))
