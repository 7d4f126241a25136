"""eDKM on the trained llama_pydoc: perplexity, bytes and train-time memory at 3 and 4 bits.

    nice .venv/bin/python benchmarks/llm_edkm.py --checkpoint out/llm/llama_pydoc --steps 40

For each bit width: eDKM fine-tuning on 2 gloo ranks with sharded saved tensors
(``edgekit compress-llm``), then validation perplexity of the clustered model,
linear-weight bytes (indices packed at the bit width + fp16 tables) vs fp32, and
per rank: the bytes the DKM layers keep for backward (summed over the 28 layers
at the end of a forward, measured by the hooks) and peak RSS. Baselines, each a
short run of ``--probe-steps`` steps (memory and time per step only): naive DKM
on 2 ranks (no hooks: autograd keeps every N x K map) and eDKM on one process
(no sharding). Writes docs/llm_edkm.json and the table between the markers in
docs/llm.md.

Peak RSS is measured with ``MALLOC_MMAP_THRESHOLD_=65536`` in the ranks' environment:
with glibc's default (a threshold that grows to 32 MB) the freed N x K temporaries
of DKM stay in the heap and peak RSS reads ~1.5 GB for eDKM and naive alike. The
``--memory-only`` pass reruns eDKM-2-ranks and naive DKM for ``--probe-steps`` with
that setting and merges them into the json (``memory``); the table takes RSS and the
saved bytes of those two from it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- llm_edkm table: begin -->", "<!-- llm_edkm table: end -->"


def run(job) -> dict:
    from edgekit.exporters.llm_compress import compress_llm

    t0 = time.perf_counter()
    r = compress_llm(job)
    r["wall_seconds"] = time.perf_counter() - t0
    return r


def mb(b: float) -> str:
    return f"{b / 1e6:.1f}"


def probe(res: dict, bits: int, naive: bool, fallback: dict) -> dict:
    """The memory pass's run for (bits, naive) when there is one (it postdates the fine-tuning runs)."""
    return next((m for m in res.get("memory", []) if m["bits"] == bits and m["naive"] == naive), fallback)


def rss(res: dict, bits: int, naive: bool, fallback: dict) -> str:
    """Peak RSS per rank (max over ranks)."""
    return mb(max(x["peak_rss_bytes"] for x in probe(res, bits, naive, fallback)["ranks"]))


def table(res: dict) -> str:
    fp32 = res["edkm"][0]["fp32_perplexity"]
    lines = [
        "| bits | perplexity (fp32 " + f"{fp32:.2f}" + ") | vs fp32 | k-means, no fine-tuning | linear bytes "
        "(indices + tables) | vs fp32 | DKM saved for backward per rank: eDKM 2 ranks / eDKM 1 proc / naive "
        "(MB) | naive / eDKM-2 | peak RSS per rank eDKM-2 / naive (MB) | s/step eDKM-2 / naive | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["edkm"]:
        b = r["bits"]
        naive = next(n for n in res["naive"] if n["bits"] == b)
        single = next(n for n in res["single"] if n["bits"] == b)
        e_saved = max(x["dkm_saved_bytes_peak"] for x in probe(res, b, False, r)["ranks"])
        n_saved = max(x["dkm_saved_bytes_peak"] for x in probe(res, b, True, naive)["ranks"])
        s_saved = single["ranks"][0]["dkm_saved_bytes_peak"]
        s = r["size"]
        lines.append(
            f"| {b} | {r['perplexity']:.2f} | {r['perplexity'] / fp32:.3f}x | {r['ptq_perplexity']:.2f} | "
            f"{s['linear_clustered_bytes']:,} vs {s['linear_fp32_bytes']:,} | **{s['ratio']:.3f}x** | "
            f"{mb(e_saved)} / {mb(s_saved)} / {mb(n_saved)} | **{n_saved / e_saved:.0f}x** | "
            f"{rss(res, b, False, r)} / {rss(res, b, True, naive)} | "
            f"{max(x['seconds_per_step'] for x in r['ranks']):.1f} / "
            f"{max(x['seconds_per_step'] for x in naive['ranks']):.1f} | {r['wall_seconds']:.0f} |")
    return "\n".join(lines)


def write_table(doc: Path, text: str) -> None:
    body = doc.read_text()
    if BEGIN in body and END in body:
        head, rest = body.split(BEGIN, 1)
        body = head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1]
        doc.write_text(body)


def main(argv=None) -> int:
    from edgekit.exporters.llm_compress import FinetuneConfig, Job

    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", default="out/llm/llama_pydoc")
    p.add_argument("--work", default="out/llm/edkm")
    p.add_argument("--bits", type=int, nargs="*", default=[4, 3])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--probe-steps", type=int, default=2)
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--out", default=str(ROOT / "docs" / "llm_edkm.json"))
    p.add_argument("--doc", default=str(ROOT / "docs" / "llm.md"))
    p.add_argument("--memory-only", action="store_true", help="rerun the RSS probes and merge them into --out")
    args = p.parse_args(argv)
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")  # read by the spawned ranks' allocator
    if args.memory_only:
        res = json.loads(Path(args.out).read_text())
        res["memory"] = []
        res["memory_env"] = {"MALLOC_MMAP_THRESHOLD_": os.environ["MALLOC_MMAP_THRESHOLD_"]}
        for b in args.bits:
            probe = FinetuneConfig(steps=args.probe_steps, nproc=args.nproc, lr=args.lr)
            for naive in (False, True):
                r = run(Job(args.checkpoint, args.work, b, probe, naive=naive, save=False))
                res["memory"].append({k: r[k] for k in ("bits", "naive", "ranks", "wall_seconds")})
                print(json.dumps(res["memory"][-1]), file=sys.stderr)
            Path(args.out).write_text(json.dumps(res, indent=2))
        text = table(res)
        print(text)
        write_table(Path(args.doc), text)
        return 0
    res = {"command": "benchmarks/llm_edkm.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "edkm": [], "naive": [], "single": []}
    for b in args.bits:
        ft = FinetuneConfig(steps=args.steps, nproc=args.nproc, lr=args.lr)
        res["edkm"].append(run(Job(args.checkpoint, args.work, b, ft)))
        print(json.dumps({k: v for k, v in res["edkm"][-1].items() if k != "recipe"}), file=sys.stderr)
        probe = FinetuneConfig(steps=args.probe_steps, nproc=args.nproc, lr=args.lr)
        res["naive"].append(run(Job(args.checkpoint, args.work, b, probe, naive=True, save=False)))
        single = FinetuneConfig(steps=args.probe_steps, nproc=1, batch=args.nproc * 4, lr=args.lr)
        res["single"].append(run(Job(args.checkpoint, args.work, b, single, save=False)))
        Path(args.out).write_text(json.dumps(res, indent=2))
    text = table(res)
    print(text)
    write_table(Path(args.doc), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
