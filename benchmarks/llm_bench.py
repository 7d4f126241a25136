"""Train the pydoc Llama, export it, and measure decode speed: torch eager vs the ExecuTorch .pte.

    python benchmarks/llm_bench.py --steps 500 --out docs/llm_results.json

Speed is measured in one process, 1 thread each, interleaved rounds (torch, pte,
torch, pte, ...): each round decodes ``--tokens`` tokens after a 16-token prefill,
teacher-forced with the same tokens in both. We report tokens/s medians and the
ratio within rounds. Eager runs both cache designs — explicit (the cache in
and out of every step) and in place (LlamaInPlaceStep, as the .pte does) —
and the speed-up is taken against the faster of the two in each round, so the
.pte is not credited for a better cache design. ``--speed-model llama_30m``
adds a ~28M-parameter model (random weights: speed does not depend on the values).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from edgekit.llm_bench import decode_rate_artifact  # the decode timing loop `edgekit bench` uses


def decode_rate_torch(model, tokens: np.ndarray, prefill: int) -> float:
    k, v = model.empty_cache(1)
    with torch.inference_mode():
        _, k, v = model(torch.from_numpy(tokens[None, :prefill]), torch.tensor([0]), k, v)
        t0 = time.perf_counter()
        for i, tok in enumerate(tokens[prefill:]):
            _, k, v = model(torch.tensor([[int(tok)]]), torch.tensor([prefill + i]), k, v)
    return (len(tokens) - prefill) / (time.perf_counter() - t0)


def decode_rate_torch_in_place(step, tokens: np.ndarray, prefill: int) -> float:
    with torch.inference_mode():
        step(torch.from_numpy(tokens[None, :prefill]), torch.tensor([0]))
        t0 = time.perf_counter()
        for i, tok in enumerate(tokens[prefill:]):
            step(torch.tensor([[int(tok)]]), torch.tensor([prefill + i]))
    return (len(tokens) - prefill) / (time.perf_counter() - t0)


def compare(model, art_path: Path, tokens: np.ndarray, rounds: int, int4_path: Path | None = None) -> dict:
    from edgekit.generate import LLMSession
    from edgekit.model_zoo.llama import LlamaInPlaceStep

    torch.set_num_threads(1)
    session = LLMSession(art_path, threads=1)
    in_place = LlamaInPlaceStep(model).eval()
    q4 = LLMSession(int4_path, threads=1) if int4_path else None
    decode_rate_torch(model, tokens[:32], 16), decode_rate_artifact(session, tokens[:32], 16)  # warm up
    decode_rate_torch_in_place(in_place, tokens[:32], 16)
    explicit, inplace, pte, pte4 = [], [], [], []
    for _ in range(rounds):
        explicit.append(decode_rate_torch(model, tokens, 16))
        inplace.append(decode_rate_torch_in_place(in_place, tokens, 16))
        pte.append(decode_rate_artifact(session, tokens, 16))
        if q4:
            pte4.append(decode_rate_artifact(q4, tokens, 16))
    int4 = {}
    if q4:
        int4 = {"int4_pte_tok_s": statistics.median(pte4),
                "int4_vs_fp32_pte": statistics.median([a / b for a, b in zip(pte4, pte)]),
                "int4_pte_bytes": (int4_path / "model.pte").stat().st_size,
                "int4_linear_ratio": q4.manifest["compression"]["summary"]["ratio_to_dense"]}
    eager = [max(a, b) for a, b in zip(explicit, inplace)]
    ratios = [p / e for p, e in zip(pte, eager)]
    return {"eager_tok_s": statistics.median(eager), "pte_tok_s": statistics.median(pte),
            "eager_explicit_cache_tok_s": statistics.median(explicit),
            "eager_in_place_cache_tok_s": statistics.median(inplace),
            "speedup": statistics.median(ratios), "speedup_range": [min(ratios), max(ratios)], "rounds": rounds,
            "decode_tokens": int(len(tokens) - 16), "pte_bytes": (art_path / "model.pte").stat().st_size} | int4


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--work", default="out/llm")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=144, help="prefill 16 + decode the rest")
    ap.add_argument("--speed-model", default=None, help="also time an untrained zoo LLM, e.g. llama_30m")
    ap.add_argument("--out", default="docs/llm_results.json")
    args = ap.parse_args()

    from edgekit.exporters.llm import export_llm
    from edgekit.generate import LLMSession
    from edgekit.model_zoo import get_spec
    from edgekit.model_zoo.llama import cfgs, load_hf_checkpoint
    from edgekit.model_zoo.llm_train import train_llm
    from edgekit.model_zoo.text import encode_split, load_tokenizer

    work = Path(args.work)
    ckpt = work / "llama_pydoc"
    if not (ckpt / "train_result.json").exists():
        torch.set_num_threads(1)
        train_llm(cfgs["llama_pydoc"], ckpt, steps=args.steps, batch=args.batch, seq_len=128)
    trained = json.loads((ckpt / "train_result.json").read_text())
    model = load_hf_checkpoint(ckpt, max_seq_len=cfgs["llama_pydoc"].max_seq_len)
    tok = load_tokenizer(ckpt / "tokenizer.json")
    val = encode_split(tok, "val")
    art = export_llm(model, ckpt / "tokenizer.json", "executorch", work / "llama_pydoc_pte", name="llama_pydoc",
                     parity_tokens=val)
    art4 = export_llm(model, ckpt / "tokenizer.json", "executorch", work / "llama_pydoc_pte_int4", name="llama_pydoc",
                      parity_tokens=val, weights="int4")
    from edgekit.exporters.llm_weights import quantized_copy
    from edgekit.model_zoo.llm_train import perplexity
    results = {"train": trained, "parity": art.manifest["parity"]["metrics"],
               "int4_parity": art4.manifest["parity"]["metrics"],
               "val_perplexity": {"fp32": perplexity(model, val, 128),
                                  "int4": perplexity(quantized_copy(model, "int4")[0], val, 128)},
               "llama_pydoc": compare(model, art.path, val[: args.tokens], args.rounds, art4.path)}
    sample = LLMSession(art.path).generate("The for statement", max_new_tokens=60, temperature=0.8, seed=0)
    results["sample"] = {"prompt": "The for statement", "text": sample.text,
                         "decode_tok_s": sample.decode_tokens_per_s}
    if args.speed_model:
        spec = get_spec(args.speed_model)
        big = spec.build()
        big_art = export_llm(big, ckpt / "tokenizer.json", "executorch", work / f"{args.speed_model}_pte",
                             name=args.speed_model)
        big4 = export_llm(big, ckpt / "tokenizer.json", "executorch", work / f"{args.speed_model}_pte_int4",
                          name=args.speed_model, weights="int4")
        rng = np.random.default_rng(0)
        toks = rng.integers(0, big.cfg.vocab_size, size=args.tokens)
        results[args.speed_model] = compare(big, big_art.path, toks, args.rounds, big4.path) | {
            "parameters": int(sum(p.numel() for p in big.parameters()))}
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
