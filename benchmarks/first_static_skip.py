"""Input-agnostic baselines for FiRST: perplexity with one fixed skip set for every prompt.

    python benchmarks/first_static_skip.py   # after benchmarks/first_bench.py; writes docs/first_static_skip.json
"""

from __future__ import annotations

import json
import sys

import torch

from edgekit.model_zoo.llama import load_hf_checkpoint
from edgekit.model_zoo.llm_train import perplexity
from edgekit.model_zoo.text import encode_split, load_tokenizer


def main() -> None:
    torch.set_num_threads(1)
    val = encode_split(load_tokenizer("out/llm/llama_pydoc/tokenizer.json"), "val")
    out = {}
    for name, d in (("base", "out/llm/llama_pydoc"), ("first_skip50_merged", "out/first/llama_pydoc_skip50")):
        m = load_hf_checkpoint(d, max_seq_len=256)
        for s in ((), (0,), (1,), (2,), (3,), (1, 2), (0, 2), (2, 3)):
            m.skip = frozenset(s)
            out[f"{name} skip {','.join(map(str, s)) or '-'}"] = round(perplexity(m, val, 128), 2)
    json.dump(out, open("docs/first_static_skip.json", "w"), indent=1)
    print(json.dumps(out, indent=1), file=sys.stderr)


if __name__ == "__main__":
    main()
