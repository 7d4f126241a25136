"""FiRST on the pydoc Llama: quality/speed curve over skip fractions, and the skip-aware ExecuTorch artifact.

    python benchmarks/first_bench.py --work out --fractions 0.25 0.5 --speed-fractions 0.5 --rounds 5

1. Train (if not on disk) routers + LoRA per target skip fraction on the frozen ``llama_pydoc``
   (``model_zoo/first_train.py``; the base checkpoint comes from `edgekit train llama_pydoc`).
2. Quality: validation perplexity (64 windows of 128 tokens, each routed from its first 16 tokens)
   of the base, the routed model before LoRA and after, with the realised skip fraction.
3. Speed: the no-skip artifact (``export_llm``, the ordinary prefill + decode .pte) and one FiRST
   artifact per fraction (``export_first_llm``). In one process, 1 thread, interleaved rounds, each
   round decodes ``--tokens`` teacher-forced tokens after a 16-token prompt with: the no-skip .pte,
   and for every FiRST artifact the fused decode method and the per-layer methods (same skip set).
   Prompts are the validation windows the routers route; we report per prompt group (number of
   layers skipped) the median tokens/s and the median within-round ratio to the no-skip .pte.
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
from edgekit.llm_bench import decode_rate_artifact as decode_rate_plain  # the timing loop of `edgekit bench`


def decode_rate_first(session, tokens: np.ndarray, prefill: int, fused: bool) -> tuple[float, frozenset]:
    _, state = session.prefill(tokens[:prefill])
    t0 = time.perf_counter()
    for i, tok in enumerate(tokens[prefill:]):
        session.decode_step(int(tok), prefill + i, state, fused=fused)
    return (len(tokens) - prefill) / (time.perf_counter() - t0), state.skip


def pick_prompts(sessions: dict, val: np.ndarray, prefill: int, tokens: int, per_group: int = 2) -> dict:
    """For each FiRST artifact, up to ``per_group`` validation windows per number of skipped layers."""
    picks = {}
    for name, s in sessions.items():
        groups: dict[int, list[int]] = {}
        for w in range(min(64, len(val) // 128)):
            _, state = s.prefill(val[w * 128: w * 128 + prefill])
            groups.setdefault(len(state.skip), [])
            if len(groups[len(state.skip)]) < per_group:
                groups[len(state.skip)].append(w)
        picks[name] = groups
    return picks


def speed(base_art: Path, first_arts: dict[str, Path], val: np.ndarray, rounds: int, tokens: int) -> dict:
    from edgekit.first_session import FiRSTSession
    from edgekit.generate import LLMSession

    torch.set_num_threads(1)
    prefill = 16
    plain = LLMSession(base_art, threads=1)
    sessions = {n: FiRSTSession(p, threads=1) for n, p in first_arts.items()}
    picks = pick_prompts(sessions, val, prefill, tokens)
    seqs = {w: val[w * 128: w * 128 + prefill + tokens] for g in picks.values() for ws in g.values() for w in ws}
    w0 = next(iter(seqs))
    decode_rate_plain(plain, seqs[w0][:32], prefill)  # warm up
    for s in sessions.values():
        decode_rate_first(s, seqs[w0][:32], prefill, True), decode_rate_first(s, seqs[w0][:32], prefill, False)
    rows: dict[tuple, dict] = {}
    base_rates = []
    for _ in range(rounds):
        for w, seq in seqs.items():
            b = decode_rate_plain(plain, seq, prefill)
            base_rates.append(b)
            for name, s in sessions.items():
                if not any(w in ws for ws in picks[name].values()):
                    continue
                for fused in (True, False):
                    r, skip = decode_rate_first(s, seq, prefill, fused)
                    row = rows.setdefault((name, len(skip), fused), {"rates": [], "ratios": [], "sets": set()})
                    row["rates"].append(r)
                    row["ratios"].append(r / b)
                    row["sets"].add(",".join(map(str, sorted(skip))) or "-")
    out = {"no_skip_pte_tok_s": statistics.median(base_rates), "rounds": rounds, "decode_tokens": tokens,
           "prompt_tokens": prefill, "rows": []}
    for (name, n_skip, fused), row in sorted(rows.items()):
        out["rows"].append({"artifact": name, "layers_skipped": n_skip, "decode_path": "fused" if fused else
                            "per-layer", "has_fused_method": any(sessions[name].fused.get(frozenset(
                                int(i) for i in s.split(",") if i.isdigit())) for s in row["sets"]),
                            "skip_sets": sorted(row["sets"]), "tok_s": statistics.median(row["rates"]),
                            "speedup_vs_no_skip_pte": statistics.median(row["ratios"]),
                            "speedup_range": [min(row["ratios"]), max(row["ratios"])], "samples": len(row["ratios"])})
    return out


@torch.no_grad()
def quality_by_skip(base_model, model, routers, val: np.ndarray, windows: int = 64, prompt: int = 16) -> dict:
    """Perplexity of the FiRST model and of the base on the same windows, grouped by layers skipped."""
    import math

    import torch.nn.functional as F

    from edgekit.model_zoo.first import routed_logits

    groups: dict[int, list[tuple[float, float]]] = {}
    for w in range(min(windows, (len(val) - 1) // 128)):
        chunk = torch.from_numpy(val[w * 128: (w + 1) * 128 + 1])[None]
        logits, _, keep = routed_logits(model, routers, chunk[:, :-1], prompt, gate="hard")
        lf = F.cross_entropy(logits[0], chunk[0, 1:]).item()
        lb = F.cross_entropy(base_model.logits_full(chunk[:, :-1])[0], chunk[0, 1:]).item()
        groups.setdefault(int((keep[0] == 0).sum()), []).append((lf, lb))
    return {str(n): {"windows": len(v), "first_ppl": math.exp(np.mean([a for a, _ in v])),
                     "base_ppl": math.exp(np.mean([b for _, b in v]))} for n, v in sorted(groups.items())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="out")
    ap.add_argument("--base", default=None, help="base checkpoint (default WORK/llm/llama_pydoc)")
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    ap.add_argument("--router-steps", type=int, default=200)
    ap.add_argument("--lora-steps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=96, help="decode steps per timed sequence")
    ap.add_argument("--speed-fractions", type=float, nargs="*", default=[0.5],
                    help="export and time the FiRST artifacts of these fractions (none: quality only)")
    ap.add_argument("--out", default="docs/first_results.json")
    args = ap.parse_args()

    from edgekit.exporters.llm import export_llm
    from edgekit.exporters.llm_first import export_first_llm
    from edgekit.model_zoo.first import load_routers
    from edgekit.model_zoo.first_train import train_first
    from edgekit.model_zoo.llama import load_hf_checkpoint
    from edgekit.model_zoo.text import encode_split, load_tokenizer

    torch.set_num_threads(1)
    work = Path(args.work)
    base = Path(args.base or work / "llm" / "llama_pydoc")
    if not (base / "model.safetensors").exists():
        sys.exit(f"no base checkpoint at {base}: run `edgekit train llama_pydoc` first")
    val = encode_split(load_tokenizer(base / "tokenizer.json"), "val")
    results = {"base_checkpoint": str(base), "curve": []}
    first_arts = {}
    for f in args.fractions:
        d = work / "first" / f"llama_pydoc_skip{round(f * 100)}"
        if not (d / "first_result.json").exists():
            train_first(base, d, target_skip=f, router_steps=args.router_steps, lora_steps=args.lora_steps)
        r = json.loads((d / "first_result.json").read_text())
        results["curve"].append({"target_skip": f, "base": r["base"], "routed_before_lora": r["routed_before_lora"],
                                 "first": r["first"], "router_steps": r["router_steps"],
                                 "lora_steps": r["lora_steps"], "train_seconds": r["router_seconds"] +
                                 r["lora_seconds"]})
        model, routers = load_hf_checkpoint(d), load_routers(d / "routers" / "first_routers.safetensors")
        results["curve"][-1]["by_layers_skipped"] = quality_by_skip(load_hf_checkpoint(base), model, routers, val)
        if f in args.speed_fractions:
            art = export_first_llm(model, routers,
                                   d / "tokenizer.json", d / "executorch-first", name=d.name,
                                   calibration_tokens=val, parity_tokens=val, min_share=0.15, max_fused=2)
            first_arts[d.name] = art.path
            results["curve"][-1]["artifact"] = {"parity": art.manifest["parity"]["metrics"],
                                                "parity_skip_sets": art.manifest["parity"]["skip_sets"],
                                                "fused_decode": art.manifest["first"]["fused_decode"],
                                                "pte_bytes": (art.path / "model.pte").stat().st_size}
    if first_arts:
        plain = export_llm(load_hf_checkpoint(base), base / "tokenizer.json", "executorch",
                           work / "first" / "llama_pydoc_pte", name="llama_pydoc", parity_tokens=val)
        results["no_skip_pte_bytes"] = (plain.path / "model.pte").stat().st_size
        results["speed"] = speed(plain.path, first_arts, val, args.rounds, args.tokens)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
