"""Decode tokens/s of Llama .pte artifacts: fp32, XNNPACK int4, edgekit lut4/3/2 (+ _q8), against bandwidth.

    python benchmarks/kernels_decode.py                  # llama_30m + llama_100m: exports (cached in
                                                         # out/kernels_decode), then ~3 min of timing
    python benchmarks/kernels_decode.py --models llama_30m --rounds 3 --tokens 32   # a quick check
    python benchmarks/kernels_decode.py --perplexity out/llm/llama_pydoc_edkm3 [--kernels edgekit-q8]

For each model (random weights from the zoo's seed; speed does not depend on their values):
  * fp32 .pte (XNNPACK), XNNPACK int4 .pte (``export-llm --weights int4``: 8da4w, groups of 32, every
    Linear incl. lm_head), and edgekit lut4 / lut3 / lut2 .pte: every Linear (incl. lm_head) clustered
    by 1-D k-means to 2**b fp16 entries (one table a tensor) and exported with
    ``--executorch-kernels edgekit`` (parity against the clustered torch model on llama_30m); lut4_q8 /
    lut3_q8 / lut2_q8: the same tables with ``--executorch-kernels edgekit-q8`` (int8 activations).
  * bytes of weights read per token: packed linear weights as the ledger reads them from the file
    (int4: ints + scales) + RMSNorm weights + one embedding row; the attention also reads the whole
    KV cache (the model masks, it does not slice): reported apart, and included in the roofline.
Timing: one child process per thread count (1, 2; XNNPACK's pool is sized before a program loads),
holding every artifact; per round a STREAM-style read of a 256 MB buffer (ek_stream_sum: the
kernels library's probe, same threads) and, for every artifact in a rotating order, a 16-token
prefill then ``--tokens`` teacher-forced decode steps, each timed. tok/s = 1 / median step time
over all rounds. The rows run decode GEMVs where the ops run them by default, on the kernels' pool with
the session's threads; at 2 threads the lut3 and lut3_q8 .pte are timed twice more per round, with decode
GEMVs on the calling thread and on ExecuTorch's threadpool, the one XNNPACK's workers serve
("decode_threads" in the JSON). Writes docs/kernels_decode.json, docs/kernels_decode.svg (roofline) and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("fp32", "xnnpack_int4", "xnnpack_int4_attn", "lut4", "lut3", "lut2", "lut4_q8", "lut3_q8", "lut2_q8")
ATTN = "_attn"  # XNNPACK int4 with --executorch-attention edgekit (the lut formats have it by default)
Q8 = "_q8"  # exported with --executorch-kernels edgekit-q8 (int8 activations)
PROMPT = 16
STREAM_MB = 256


def cluster_kmeans(model, bits: int, seed: int = 0):
    """A copy of ``model`` whose every Linear holds a ``bits``-bit k-means table (fp16 entries), recorded."""
    import copy

    import torch
    from edgekit.exporters.compression.kmeans import assign, kmeans1d
    from edgekit.exporters.compression.palettize import write_lut
    from edgekit.exporters.compression.record import fp16_exact

    out, rng = copy.deepcopy(model), np.random.default_rng(seed)
    for name, m in out.named_modules():
        if isinstance(m, torch.nn.Linear):
            w = m.weight.detach().numpy()
            sample = rng.choice(w.ravel(), size=min(w.size, 1 << 16), replace=False)
            table = np.sort(fp16_exact(kmeans1d(sample, 2 ** bits)))
            idx = assign(w, table)
            write_lut(m, table[idx].astype(np.float32), bits, table[None].astype(np.float32), "palettize")
    return out


def export_all(name: str, work: Path, formats) -> dict[str, Path]:
    """Export (or reuse) every format of zoo model ``name``; {format: artifact dir}."""
    from edgekit.exporters.llm import export_llm
    from edgekit.model_zoo import get_spec
    from edgekit.model_zoo.text import train_tokenizer

    tok = work / "tokenizer.json"
    if not tok.is_file():
        work.mkdir(parents=True, exist_ok=True)
        train_tokenizer(1024).save(str(tok))  # generation is not measured; the artifact needs one
    arts, model, clustered = {}, None, {}
    for fmt in formats:
        out = work / name / fmt
        if (out / "manifest.json").is_file():
            arts[fmt] = out
            continue
        if model is None:
            model = get_spec(name).build()
        t0 = time.time()
        # parity (prefill + 32 teacher-forced steps vs torch) on the smaller model; the >= 100M artifacts skip it
        # to save export time on a shared 2-core machine (the same export path, checked on llama_30m and in tests)
        ids = (np.random.default_rng(1).integers(0, model.cfg.vocab_size, PROMPT + 32)
               if sum(p.numel() for p in model.parameters()) < 50e6 else None)
        if fmt == "fp32":
            export_llm(model, tok, "executorch", out, name=name, parity_tokens=ids)
        elif fmt.startswith("xnnpack_int4"):  # random weights: int4 + int8 activations vs torch is no parity check
            export_llm(model, tok, "executorch", out, name=name, weights="int4", group_size=32,
                       attention="edgekit" if fmt.endswith(ATTN) else "graph")
        else:  # lut<b> and lut<b>_q8 share the clustered copy (the same tables and indices)
            bits = int(fmt[3])
            clustered[bits] = clustered.get(bits) or cluster_kmeans(model, bits)
            export_llm(clustered[bits], tok, "executorch", out, name=name, parity_tokens=ids,
                       kernels="edgekit-q8" if fmt.endswith(Q8) else "edgekit")
        print(f"  exported {name} {fmt} in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
        arts[fmt] = out
    return arts


def bytes_per_token(manifest: dict, fmt: str, tokens: int) -> dict:
    """Weight bytes a decode step reads (from the ledger, which reads the file) and the KV cache it reads."""
    cfg = manifest["model"]["config"]
    d, layers, hd = cfg["dim"], cfg["n_layers"], cfg["dim"] // cfg["n_heads"]
    norms = (2 * layers + 1) * d * 4
    linear_fp32 = 4 * (layers * (2 * d * d + 2 * d * cfg["n_kv_heads"] * hd + 3 * d * cfg["hidden_dim"])
                       + cfg["vocab_size"] * d)
    if fmt == "fp32":
        linear = linear_fp32
    else:
        ledger = manifest["compression"]["ledger"]
        assert sum(r["dense_bytes"] for r in ledger) == linear_fp32, "every Linear is in the ledger"
        linear = sum(r["bytes_written"] for r in ledger)
    kv = 2 * layers * cfg["n_kv_heads"] * cfg["max_seq_len"] * hd * 4
    if manifest["options"].get("executorch_attention") == "edgekit":  # reads the positions in use: on average
        kv = kv * (PROMPT + 1 + tokens / 2) / cfg["max_seq_len"]    # those of the middle timed step
    return {"weights": linear + norms + d * 4, "linear": linear, "kv_cache": kv}


ALT_DECODE_THREADS = ("calling", "executorch")  # besides the ops' default, the kernels' pool


def child(plan_file: str, threads: int) -> None:
    """Time every artifact of the plan at ``threads``, interleaved; print one JSON line."""
    from edgekit.kernels import _native as nk
    from edgekit.kernels.executorch_ops import set_decode_threads

    from edgekit.bench import machine_info
    from edgekit.generate import LLMSession

    plan = json.loads(Path(plan_file).read_text())
    sessions = {key: LLMSession(path, threads=threads) for key, path in plan["artifacts"].items()}
    if threads > 1:  # lut3 and lut3_q8 again, decode GEMVs elsewhere (same session, switched per visit)
        sessions |= {f"{key}@{where}": s for key, s in sessions.items() if key.split("/")[1] in ("lut3", "lut3_q8")
                     for where in ALT_DECODE_THREADS}
    nk.set_default_threads(threads)
    buf = np.ones((STREAM_MB << 20) // 4, np.float32)
    rng = np.random.default_rng(0)
    steps, cpu, bw, bw_cpu, keys = {k: [] for k in sessions}, {k: [] for k in sessions}, [], [], list(sessions)
    load_before = os.getloadavg()
    for r in range(plan["rounds"]):
        nk.stream_sum(buf, threads)
        for _ in range(3):
            c0, t0 = time.process_time(), time.perf_counter()
            nk.stream_sum(buf, threads)
            bw.append(buf.nbytes / (time.perf_counter() - t0) / 1e9)
            bw_cpu.append(buf.nbytes / ((time.process_time() - c0) / threads) / 1e9)
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:  # rotate: no format always runs first
            s = sessions[key]
            set_decode_threads(key.split("@")[1] if "@" in key else "edgekit")
            ids = rng.integers(0, s.manifest["model"]["config"]["vocab_size"], PROMPT + plan["tokens"] + 1)
            _, state = s._prefill_prompt(ids[:PROMPT])
            s._decode_state(int(ids[PROMPT]), PROMPT, state)  # warm
            for i, tok in enumerate(ids[PROMPT + 1:]):
                c0, t0 = time.process_time(), time.perf_counter()
                s._decode_state(int(tok), PROMPT + 1 + i, state)
                steps[key].append(time.perf_counter() - t0)
                cpu[key].append((time.process_time() - c0) / threads)  # the step on idle cores
    set_decode_threads("edgekit")
    out = {"threads": threads, "bandwidth_gbs": float(np.median(bw)), "bandwidth_samples": len(bw),
           "bandwidth_gbs_cpu": float(np.median(bw_cpu)),
           "load_before": list(load_before), "load_after": list(os.getloadavg()),
           "machine": machine_info(issues=False),
           "steps": {k: {"median_ms": float(np.median(v) * 1e3), "p10_ms": float(np.percentile(v, 10) * 1e3),
                         "p90_ms": float(np.percentile(v, 90) * 1e3), "n": len(v),
                         "cpu_median_ms": float(np.median(cpu[k]) * 1e3)} for k, v in steps.items()}}
    print(json.dumps(out))


def run(models, rounds: int, tokens: int, work: Path, export: bool = True) -> dict:
    if export:
        arts = {m: export_all(m, work, FORMATS) for m in models}
    else:  # --no-export: time the artifacts already in the work folder
        arts = {m: {f: work / m / f for f in FORMATS if (work / m / f / "manifest.json").is_file()} for m in models}
    plan = work / "plan.json"
    plan.write_text(json.dumps({"rounds": rounds, "tokens": tokens,
                                "artifacts": {f"{m}/{f}": str(p) for m in models for f, p in arts[m].items()}}))
    res = {"models": {}, "threads": {}, "decode_threads": {}}
    for threads in (1, 2):
        print(f"  timing at {threads} thread(s) ...", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, __file__, "--child", str(plan), "--threads", str(threads)],
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            raise SystemExit(f"child at {threads} threads failed:\n{proc.stderr[-3000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        res["threads"][str(threads)] = {k: r[k] for k in ("bandwidth_gbs", "bandwidth_gbs_cpu", "bandwidth_samples",
                                                          "load_before", "load_after")}
        res["machine"] = r["machine"]
        for key, st in r["steps"].items():
            m, fmt = key.split("/")
            if "@" in fmt:  # decode GEMVs on the calling thread or ExecuTorch's pool instead of the kernels' pool
                fmt, where = fmt.split("@")
                res["decode_threads"].setdefault(m, {}).setdefault(fmt, {}).setdefault(str(threads), {})[where] = {
                    "tok_s": round(1e3 / st["median_ms"], 2), "tok_s_cpu": round(1e3 / st["cpu_median_ms"], 2),
                    "steps": st}
                continue
            man = json.loads((arts[m][fmt] / "manifest.json").read_text())
            entry = res["models"].setdefault(m, {"parameters": man["model"]["parameters"],
                                                 "config": man["model"]["config"], "formats": {}})
            f = entry["formats"].setdefault(fmt, {
                "pte_bytes": (arts[m][fmt] / "model.pte").stat().st_size,
                "bytes_per_token": bytes_per_token(man, fmt, tokens),
                "parity": (man.get("parity") or {}).get("metrics", {}).get("cosine_min"), "tok_s": {}, "tok_s_cpu": {},
                "steps": {}})
            f["tok_s"][str(threads)] = round(1e3 / st["median_ms"], 2)
            f["tok_s_cpu"][str(threads)] = round(1e3 / st["cpu_median_ms"], 2) if st["cpu_median_ms"] else None
            f["steps"][str(threads)] = st
    pairs = {"lut3_vs_int4": ("lut3", "xnnpack_int4"), "lut3_vs_fp32": ("lut3", "fp32"),
             "lut4_vs_int4": ("lut4", "xnnpack_int4"), "lut2_vs_int4": ("lut2", "xnnpack_int4"),
             "lut2_vs_lut4": ("lut2", "lut4"), "int4_vs_fp32": ("xnnpack_int4", "fp32"),
             "lut3_q8_vs_int4": ("lut3_q8", "xnnpack_int4"), "lut3_q8_vs_fp32": ("lut3_q8", "fp32"),
             "lut4_q8_vs_int4": ("lut4_q8", "xnnpack_int4"), "lut2_q8_vs_int4": ("lut2_q8", "xnnpack_int4"),
             "lut3_q8_vs_lut3": ("lut3_q8", "lut3"),
             # like for like: the int4 .pte with the same edgekit attention op as the lut .pte
             "lut3_vs_int4_attn": ("lut3", "xnnpack_int4_attn"), "lut3_q8_vs_int4_attn": ("lut3_q8", "xnnpack_int4_attn"),
             "lut4_q8_vs_int4_attn": ("lut4_q8", "xnnpack_int4_attn"),
             "lut2_q8_vs_int4_attn": ("lut2_q8", "xnnpack_int4_attn"),
             "int4_attn_vs_int4": ("xnnpack_int4_attn", "xnnpack_int4")}
    for m, entry in res["models"].items():
        fm = entry["formats"]
        for basis in ("tok_s", "tok_s_cpu"):  # wall time, and CPU time / threads (the step on idle cores)
            entry["ratios" + basis[5:]] = {t: {name: round(fm[a][basis][t] / fm[b][basis][t], 3)
                                               for name, (a, b) in pairs.items() if a in fm and b in fm}
                                           for t in res["threads"]}
        for fmt, by_t in res["decode_threads"].get(m, {}).items():  # kernels' pool / elsewhere, same rounds
            for t, alts in by_t.items():
                for p in alts.values():
                    p["pool_vs_this"] = round(fm[fmt]["tok_s"][t] / p["tok_s"], 3)
                    p["pool_vs_this_cpu"] = round(fm[fmt]["tok_s_cpu"][t] / p["tok_s_cpu"], 3)
    big = [m for m, e in res["models"].items() if e["parameters"] >= 100e6]
    res["acceptance"] = {m: {basis: {t: {f"{a}>={x:g}": r[a] >= x for a, x in (
                                         ("lut3_vs_int4", 1.3), ("lut3_vs_fp32", 4), ("lut3_q8_vs_int4", 1.3),
                                         ("lut3_q8_vs_fp32", 4), ("lut3_vs_int4_attn", 1.3),
                                         ("lut3_q8_vs_int4_attn", 1.3)) if a in r}
                                     for t, r in res["models"][m][basis].items()} for basis in ("ratios", "ratios_cpu")}
                         for m in big}
    res["method"] = {"rounds": rounds, "decode_steps_per_round": tokens, "prompt_tokens": PROMPT,
                     "statistic": "1 / median decode step over all rounds", "stream_buffer_mb": STREAM_MB,
                     "command": "python benchmarks/kernels_decode.py"
                     + ("" if list(models) == ["llama_30m", "llama_100m"] else f" --models {','.join(models)}")
                     + ("" if rounds == 5 else f" --rounds {rounds}") + ("" if tokens == 64 else f" --tokens {tokens}")
                     + ("" if export else " --no-export")}
    return res


def table(res: dict) -> str:
    lines = [f"read bandwidth (ek_stream_sum, {STREAM_MB} MB): "
             + ", ".join(f"{t} thr {v['bandwidth_gbs']:.1f} GB/s" for t, v in res["threads"].items())]
    lines.append(f"{'model':<11} {'format':<13} {'MB/token':>9} {'KV MB':>6} {'tok/s 1t':>9} {'tok/s 2t':>9} "
                 f"{'cpu 1t':>7} {'cpu 2t':>7}")
    for m, e in res["models"].items():
        for fmt, f in e["formats"].items():
            b = f["bytes_per_token"]
            lines.append(f"{m:<11} {fmt:<13} {b['weights'] / 1e6:>9.1f} {b['kv_cache'] / 1e6:>6.1f} "
                         f"{f['tok_s']['1']:>9.1f} {f['tok_s']['2']:>9.1f} "
                         f"{f['tok_s_cpu']['1']:>7.1f} {f['tok_s_cpu']['2']:>7.1f}")
    return "\n".join(lines)


def plot(res: dict, path: Path) -> None:
    """Roofline: bytes read per token (weights + KV cache) vs tokens/s, with bandwidth / bytes lines;
    one panel on wall time, one on CPU time / threads (the machine is shared)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    markers = {"fp32": "s", "xnnpack_int4": "D", "xnnpack_int4_attn": "d", "lut4": "o", "lut3": "^", "lut2": "v", "lut4_q8": "P",
               "lut3_q8": "*", "lut2_q8": "X"}
    colors = {"1": "tab:blue", "2": "tab:orange"}
    xs = [f["bytes_per_token"]["weights"] + f["bytes_per_token"]["kv_cache"]
          for e in res["models"].values() for f in e["formats"].values()]
    grid = np.geomspace(min(xs) / 1.5, max(xs) * 1.5, 50)
    for ax, (basis, bw_key, title) in zip(axes, (("tok_s", "bandwidth_gbs", "wall time"),
                                                 ("tok_s_cpu", "bandwidth_gbs_cpu", "CPU time / threads"))):
        for t, info in res["threads"].items():
            bw = info[bw_key] * 1e9
            ax.plot(grid / 1e6, bw / grid, "--", color=colors[t], lw=1,
                    label=f"read bandwidth / bytes: {info[bw_key]:.1f} GB/s, {t} thr")
        for m, e in res["models"].items():
            for fmt, f in e["formats"].items():
                x = (f["bytes_per_token"]["weights"] + f["bytes_per_token"]["kv_cache"]) / 1e6
                for t in res["threads"]:
                    ax.scatter([x], [f[basis][t]], marker=markers[fmt], color=colors[t], s=30, zorder=3)
                ax.annotate(f"{m.removeprefix('llama_')} {fmt.replace('xnnpack_', 'xnn ')}", (x, f[basis]["1"]),
                            textcoords="offset points", xytext=(4, 4) if fmt.endswith(Q8) else (4, -10),
                            fontsize=7)  # q8 rows sit at the exact rows' x: labels above them
        ax.set_xscale("log"), ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("MB read per decoded token (weights + KV cache)")
        ax.set_title(f"decode, {title}", fontsize=10)
        ax.legend(fontsize=7, loc="lower left")
        ax.grid(True, which="both", lw=0.3)
    axes[0].set_ylabel("decode tokens/s (blue: 1 thread, orange: 2)")
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None} if str(path).endswith(".svg") else None)
    plt.close(fig)


def perplexity_check(ckpt: Path, work: Path, kernels: str = "edgekit") -> dict:
    """A clustered (eDKM) checkpoint exported with edgekit kernels: held-out perplexity, torch vs .pte.
    ``kernels="edgekit-q8"``: the int8-activation ops; the torch model stays the exact clustered one."""
    from edgekit.exporters.llm import export_llm
    from edgekit.exporters.llm_compress import load_clustered
    from edgekit.exporters.llm_kernels import perplexities
    from edgekit.model_zoo.llm_train import perplexity
    from edgekit.model_zoo.text import encode_split, load_tokenizer

    from edgekit.generate import LLMSession

    model = load_clustered(ckpt)
    val = encode_split(load_tokenizer(ckpt / "tokenizer.json"), "val")
    art = export_llm(model, ckpt / "tokenizer.json", "executorch", work / f"{ckpt.name}_{kernels}",
                     name=ckpt.name, parity_tokens=val, kernels=kernels)
    s = art.manifest["compression"]["summary"]
    p = perplexities(model, LLMSession(art.path, threads=1), val, seq_len=128, max_windows=64)
    return {"checkpoint": ckpt.name, "bits": sorted({r["encoded"]["index_bits"] for r in
                                                     art.manifest["compression"]["ledger"]}),
            "formats": sorted({r["encoded"]["format"] for r in art.manifest["compression"]["ledger"]}),
            "kernels": kernels, "activations": sorted({r["encoded"].get("activations", "fp32") for r in
                                                       art.manifest["compression"]["ledger"]}),
            "linear_bytes_written": s["bytes_written"], "linear_dense_bytes": s["dense_bytes"],
            "pte_bytes": (art.path / "model.pte").stat().st_size, "parity": art.manifest["parity"]["metrics"],
            "perplexity": p, "torch_perplexity_llm_train": perplexity(model, val, 128),
            "command": f"python benchmarks/kernels_decode.py --perplexity {ckpt}"
                       + ("" if kernels == "edgekit" else f" --kernels {kernels}")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="llama_30m,llama_100m")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=64, help="timed decode steps per artifact and round")
    ap.add_argument("--work", default=str(ROOT / "out" / "kernels_decode"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "kernels_decode.json"))
    ap.add_argument("--plot", default=str(ROOT / "docs" / "kernels_decode.svg"))
    ap.add_argument("--no-export", action="store_true", help="time only the artifacts already in --work")
    ap.add_argument("--perplexity", metavar="CLUSTERED_CKPT", help="instead: perplexity of this eDKM checkpoint, "
                    "torch vs its edgekit .pte (writes docs/kernels_decode_ppl.json; _q8.json with --kernels "
                    "edgekit-q8)")
    ap.add_argument("--kernels", default="edgekit", choices=("edgekit", "edgekit-q8"),
                    help="--perplexity: the .pte's ops (edgekit-q8: int8 activations)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.threads)
        return 0
    if args.perplexity:
        res = perplexity_check(Path(args.perplexity), Path(args.work), args.kernels)
        name = "kernels_decode_ppl" + ("_q8" if args.kernels == "edgekit-q8" else "") + ".json"
        (Path(args.out).parent / name).write_text(json.dumps(res, indent=1) + "\n")
        print(json.dumps(res["perplexity"]))
        return 0
    res = run(args.models.split(","), args.rounds, args.tokens, Path(args.work), export=not args.no_export)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    plot(res, Path(args.plot))
    print(table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
