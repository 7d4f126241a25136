"""What the eDKM-clustered LLM checkpoints become in each artifact: bytes, encoding, perplexity.

    python benchmarks/llm_clustered_artifacts.py --work out/llm --out docs/llm_clustered.json

For the 4- and 3-bit checkpoints that `edgekit compress-llm` writes (out/llm/edkm/...):
- Core ML (iOS18): the tables stay tables (constexpr_lut_to_dense); bytes from the ledger.
- ExecuTorch: XNNPACK has no table lookup, so the clustered weights are re-quantized to int4
  (groups of 32 for 4-bit, one scale a channel for 3-bit); bytes and the re-quantized
  model's validation perplexity, against fp32 and against the clustered model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="out/llm")
    ap.add_argument("--out", default="docs/llm_clustered.json")
    args = ap.parse_args()

    from edgekit.exporters.llm import export_llm
    from edgekit.exporters.llm_compress import load_clustered
    from edgekit.exporters.llm_weights import quantized_copy
    from edgekit.model_zoo.llama import load_hf_checkpoint
    from edgekit.model_zoo.llm_train import perplexity
    from edgekit.model_zoo.text import encode_split, load_tokenizer

    torch.set_num_threads(1)
    work = Path(args.work)
    base = work / "llama_pydoc"
    val = encode_split(load_tokenizer(base / "tokenizer.json"), "val")
    fp32 = load_hf_checkpoint(base)
    linear_fp32 = sum(m.weight.numel() * 4 for n, m in fp32.named_modules()
                      if isinstance(m, torch.nn.Linear) and n != "lm_head")
    results = {"fp32": {"val_perplexity": perplexity(fp32, val, 128), "linear_bytes": linear_fp32}}
    for bits, group in ((4, 32), (3, 0)):
        ckpt = work / "edkm" / f"llama_pydoc_edkm{bits}"
        model = load_clustered(ckpt)
        row = {"clustered_val_perplexity": perplexity(model, val, 128)}
        coreml = export_llm(model, ckpt / "tokenizer.json", "coreml", work / "clustered_art" / f"edkm{bits}_coreml")
        s = coreml.manifest["compression"]["summary"]
        row["coreml"] = {"linear_bytes": s["bytes_written"], "ratio_to_fp32": s["bytes_written"] / linear_fp32,
                         "package_bytes": sum(f["bytes"] for f in coreml.manifest["files"]),
                         "encodings": sorted({r["encoded"]["format"] for r in coreml.manifest["compression"]["ledger"]})}
        pte = export_llm(model, ckpt / "tokenizer.json", "executorch", work / "clustered_art" / f"edkm{bits}_pte",
                         parity_tokens=val, weights="int4", group_size=group)
        ledger = [r for r in pte.manifest["compression"]["ledger"] if r["layer"] != "lm_head"]
        written = sum(r["bytes_written"] for r in ledger)
        row["executorch_int4"] = {
            "group_size": group or "per channel", "linear_bytes": written, "ratio_to_fp32": written / linear_fp32,
            "pte_bytes": (pte.path / "model.pte").stat().st_size,
            "max_rel_rms_error": max(r["encoded"]["rel_rms_error"] for r in ledger),
            "val_perplexity": perplexity(quantized_copy(model, "int4", group)[0], val, 128),
            "parity_vs_quantized_torch": pte.manifest["parity"]["metrics"]}
        results[f"edkm{bits}"] = row
        print(json.dumps({f"edkm{bits}": row}, indent=2, default=str))
    Path(args.out).write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
