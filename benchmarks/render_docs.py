"""Rewrite the figure blocks of docs/*.md from the result JSON files in docs/, so the prose cannot drift.

    python benchmarks/render_docs.py          # rewrite every <!-- figures:NAME -->...<!-- /figures --> block
    python benchmarks/render_docs.py --check  # exit 1 and name the blocks that are out of date (tests run this)

A block is inline (``<!-- figures:pte_speedup -->4.90x<!-- /figures -->``) or spans lines; its
content is whatever ``FIGURES[NAME]`` renders from the JSON files. Each renderer names the
files it reads; the scripts that write those files are named beside each block in the docs.
Only the standard library: the check runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"(<!-- figures:(?P<name>[a-z0-9_]+) -->)(?P<body>.*?)(<!-- /figures -->)", re.S)


def _load(name: str):
    return json.loads((DOCS / name).read_text())


def _table(headers: list[str], rows: list[list[object]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n" + "\n".join(out) + "\n"


def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


# -- LLM decode speed (benchmarks/llm_bench.py -> docs/llm_results.json) ---------------------------------------

def pte_speedup() -> str:
    return f"{_load('llm_results.json')['llama_pydoc']['speedup']:.2f}x"


def pte_speedup_30m() -> str:
    return f"{_load('llm_results.json')['llama_30m']['speedup']:.2f}x"


def llm_speed() -> str:
    d = _load("llm_results.json")
    rows = []
    for key, label in (("llama_pydoc", "llama_pydoc"), ("llama_30m", "llama_30m (max_seq 512)")):
        r = d[key]
        params = r.get("parameters") or d["train"]["parameters"]
        rows.append([label, f"{params / 1e6:.2f}M", f"{r['eager_tok_s']:,.1f}", f"{r['pte_tok_s']:,.1f}",
                     f"**{r['speedup']:.2f}x**", f"{r['speedup_range'][0]:.2f}..{r['speedup_range'][1]:.2f}",
                     f"{r['int4_pte_tok_s']:,.1f}", f"**{r['int4_vs_fp32_pte']:.2f}x**",
                     f"{_mb(r['pte_bytes'])} / {_mb(r['int4_pte_bytes'])}"])
    return _table(["model", "params", "eager tok/s (best)", ".pte fp32 tok/s", "speed-up", "range",
                   ".pte int4 tok/s", "int4 vs fp32 .pte", ".pte bytes fp32 / int4"], rows)


def llm_bench_server() -> str:
    d = _load("llm_bench_server.json")
    return (f"decode p50 **{d['local_p50_ms']:.3f} ms** a token locally, **{d['server_p50_ms']:.3f} ms** through "
            f"`edgekit serve`: server / local **{d['server_over_local']:.3f}** (median of {d['rounds']} rounds, range "
            f"{d['ratio_range'][0]:.2f}..{d['ratio_range'][1]:.2f}; load average "
            f"{d['load_average'][0]:.1f} on {d['machine']['cpu_count']} cores while it ran, so single rounds "
            f"differ by up to {max(abs(1 - r) for r in d['ratio_range']) * 100:.0f}%)")


def llm_perplexity() -> str:
    d = _load("llm_results.json")
    return (f"validation perplexity **{d['val_perplexity']['fp32']:.2f}** fp32, "
            f"{d['val_perplexity']['int4']:.2f} with int4 weights (groups of 32)")


# -- the zoo (benchmarks/zoo_accuracy.py, hourglass_vs_conventional.py, phc_forms.py) --------------------------

def _accuracy(label: str) -> dict:
    return next(r for r in _load("zoo_results/accuracy.json") if r["label"].startswith(label))


def zoo_accuracy_vovnet() -> str:
    r, base = _accuracy("vovnet_tiny"), _accuracy("resnet_tiny")
    return _table(["model (digits, 10 classes)", "params", "held-out accuracy", "training time"],
                  [[x["label"], f"{x['params']:,}", f"{x['accuracy'] * 100:.2f}%", f"{x['seconds']:.0f} s"]
                   for x in (r, base)])


def phc_forms() -> str:
    rows = []
    for r in _load("zoo_results/phc_forms.json"):
        rows.append([r["runtime"], f"{r['factorised_bytes']:,}", f"{r['folded_bytes']:,}",
                     f"{r['folded_bytes'] / r['factorised_bytes']:.2f}x", f"{r['factorised_p50_ms']:.3f}",
                     f"{r['folded_p50_ms']:.3f}", f"{r['folded_over_factorised']:.2f}x"])
    acc = _accuracy("phnn_tiny")
    return _table(["phnn_tiny (n=4) on", "factorised bytes", "folded bytes", "folded / factorised",
                   "factorised p50 ms", "folded p50 ms", "folded time / factorised"], rows) + \
        f"\nHeld-out digits accuracy of `phnn_tiny`: **{acc['accuracy'] * 100:.2f}%** ({acc['params']:,} parameters).\n"


def denseshift_accuracy() -> str:
    fp, q = _accuracy("denseshift_tiny fp32"), _accuracy("denseshift_tiny 3-bit")
    return _table(["denseshift_tiny (digits)", "held-out accuracy"],
                  [["fp32 weights", f"{fp['accuracy'] * 100:.2f}%"], ["3-bit shift weights", f"{q['accuracy'] * 100:.2f}%"],
                   ["drop", f"{(fp['accuracy'] - q['accuracy']) * 100:.2f} points"]])


def denseshift_bytes() -> str:
    rows = [[r["target"], r["variant"], f"{r['file_bytes']:,}", f"{r['weight_bytes']:,}", f"{r['expected_bytes']:,}",
             "ok" if r["parity_ok"] else "FAIL"] for r in _load("zoo_results/denseshift_encodings.json")]
    return _table(["target", "variant", "file bytes", "shift-layer weight bytes", "3-bit expected bytes", "parity"],
                  rows)


def hourglass() -> str:
    d = _load("zoo_results/hourglass.json")
    rows = [[r["depth"], f"{r['hourglass']['d_z']} / {r['hourglass']['d_h']}", f"{r['hourglass']['params']:,}",
             f"{r['hourglass']['psnr_db']:.2f}", f"{r['conventional']['d_x']} / {r['conventional']['d_h']}",
             f"{r['conventional']['params']:,}", f"{r['conventional']['psnr_db']:.2f}",
             f"{r['hourglass']['psnr_db'] - r['conventional']['psnr_db']:+.2f}"] for r in d["rows"]]
    return _table(["depth", "hourglass d_z / d_h", "params", "PSNR dB", "conventional d_x / d_h", "params",
                   "PSNR dB", "hourglass - conventional"], rows) + \
        f"\nDenoising digits (noise σ {d['sigma']}), {d['epochs']} epochs each.\n"


# -- compression (benchmarks/compression_acceptance.py, edkm_memory.py, llm_edkm.py) ---------------------------

def compression_recipes() -> str:
    d = _load("compression_results.json")
    rows = [[name, f"{r['accuracy']:.2f}%", f"{r['drop']:.2f}", f"{r['weight_ratio_expected']:.3f}",
             f"{r['targets']['coreml']['bytes']:,}" if "coreml" in r["targets"] else "-"]
            for name, r in d["recipes"].items()]
    return _table([f"recipe on {d['model'].split('{')[0]} (fp32 {d['fp32_accuracy']:.2f}%)", "accuracy", "drop (points)",
                   "weight bytes / fp32", "Core ML iOS18 bytes"], rows)


def edkm_memory() -> str:
    d = _load("edkm_memory.json")
    rows = [[r["bits"], f"{r['rows']} x {r['cols']}", r["dtype"], f"{r['naive_saved_bytes'] / 1e6:.1f}",
             f"{r['edkm_saved_bytes'] / 1e6:.2f}", f"**{r['ratio']:.1f}x**", r["grad_equal_to_no_hooks"]]
            for r in d["single"]]
    return _table(["bits", "layer", "weights", "DKM saved MB", "eDKM saved MB", "ratio", "gradients equal"], rows) + \
        f"\nCommand: `{d['command']}`.\n"


def edkm_llm() -> str:
    d = _load("llm_edkm.json")
    rows = []
    for r in d["edkm"]:
        s = r["size"]
        rows.append([r["bits"], f"{r['fp32_perplexity']:.2f}", f"{r['ptq_perplexity']:.2f}", f"{r['perplexity']:.2f}",
                     f"{r['perplexity'] / r['fp32_perplexity']:.3f}x", f"**{s['ratio']:.3f}x**"])
    return _table(["bits", "fp32 ppl", "k-means, no fine-tuning", "eDKM ppl", "vs fp32", "linear bytes / fp32"], rows)


# -- FiRST (benchmarks/first_bench.py -> docs/first_results.json) ----------------------------------------------

def first_curve() -> str:
    d = _load("first_results.json")
    base = d["curve"][0]["base"]["perplexity"]
    rows = [["0 (base)", "0", f"{base:.2f}", "-"]]
    for c in d["curve"]:
        rows.append([f"{c['target_skip']:g}", f"{c['first']['skip_fraction']:.2f}", f"{c['first']['perplexity']:.2f}",
                     f"{(c['first']['perplexity'] / base - 1) * 100:+.1f}%"])
    best = max(d["speed"]["rows"], key=lambda r: (r["layers_skipped"], r["decode_path"] == "fused"))
    return _table(["target skip", "realised skip fraction", "perplexity", "vs base"], rows) + (
        f"\nDecode speed-up of the skip-aware .pte at {best['layers_skipped']} of 4 layers skipped "
        f"({best['decode_path']}): **{best['speedup_vs_no_skip_pte']:.2f}x** the no-skip .pte "
        f"(range {best['speedup_range'][0]:.2f}..{best['speedup_range'][1]:.2f}).\n")


def gradual_sparsity() -> str:
    r = _load("compression_results.json")["recipes"]["sparse50_palettize4"]
    return (f"`sparse50_palettize4` (gradual 50% sparsity, then 4-bit tables) on resnet_tiny: "
            f"**{r['accuracy']:.2f}%** held-out accuracy ({r['drop']:.2f} points below fp32), weights at "
            f"{r['weight_ratio_expected']:.3f}x the fp32 bytes")


# -- int8 (benchmarks/int8.py -> docs/int8_results.json) ---------------------------------------------------

INT8_MODELS = ("resnet18_digits", "vovnet19_slim_digits", "denseshift_resnet18_digits", "resnet_tiny", "vovnet_tiny",
               "denseshift_tiny")


def _dense(c, key: str) -> float:
    """A cell's int8 file (``key`` "file") or weights ("weights") over a dense fp32 file's: the fp32 artifact's own,
    except where that stores shift weights as int8 (DenseShift on TFLite/ONNX: ``fp32_dense``, pow2_int8 off)."""
    f = c.get("fp32_dense", c["fp32"])
    return c["int8"]["bytes"] / f["bytes"] if key == "file" else c["int8"]["file_bytes"]["weights"] / f["file_bytes"][
        "weights"]


def _int8_cells():
    d = _load("int8_results.json")["models"]
    for name in [m for m in INT8_MODELS if m in d] + sorted(set(d) - set(INT8_MODELS)):
        for target, c in d[name]["targets"].items():
            yield name, d[name], target, c


def _pct(x) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def int8_table() -> str:
    rows = []
    for name, m, target, c in _int8_cells():
        f, q, lat = c["fp32"], c["int8"], c.get("latency", {})
        p = q["parity"]
        wr = c.get("weights_ratio")
        flips = q.get("flips_vs_fp32")
        rows.append([name, target, _pct(f["accuracy"]), _pct(q["accuracy"]),
                     "-" if c["accuracy_delta_points"] is None else f"{c['accuracy_delta_points']:+.2f}",
                     "-" if flips is None else f"{flips}", f"{f['bytes']:,}", f"{q['bytes']:,}",
                     f"{c['bytes_ratio']:.3f}", "-" if wr is None else f"{wr:.3f}",
                     f"{_dense(c, 'file'):.3f}",
                     f"{p['cosine_mean']:.5f} / {p['cosine_min']:.4f}, {p['top1'] * 100:.0f}%",
                     *[_speedup(lat[t]) if t in lat else "-" for t in ("1", "2")], _ms(lat.get("1"))])
    return _table(["model", "target", "fp32 acc", "int8 acc", "Δ points", "top-1 changed (of 360)", "fp32 bytes",
                   "int8 bytes", "ratio", "ratio, weights only", "ratio to a dense fp32 file", "int8 parity (cos mean / worst, top-1)",
                   "speedup 1 thr: p50 / fastest", "speedup 2 thr: p50 / fastest",
                   "fp32 / int8 ms, 1 thr: p50 (fastest)"], rows)


def _speedup(lat: dict) -> str:
    """p50 ratio / fastest-run ratio (medians over rounds); rows measured before fastest runs were kept: p50 only."""
    fastest = f" / {lat['speedup_min_median']:.2f}x" if "speedup_min_median" in lat else ""
    return f"{lat['speedup_median']:.2f}x{fastest}"


def _ms(lat: dict | None) -> str:
    if lat is None:
        return "-"
    if "fp32_min_ms" not in lat:
        return f"{lat['fp32_p50_ms']:.2f} / {lat['int8_p50_ms']:.2f}"
    return f"{lat['fp32_p50_ms']:.2f} ({lat['fp32_min_ms']:.2f}) / {lat['int8_p50_ms']:.2f} ({lat['int8_min_ms']:.2f})"


def int8_bytes() -> str:
    rows = []
    for name, m, target, c in _int8_cells():
        if "file_bytes" not in c["int8"]:
            continue
        f, q = c["fp32"]["file_bytes"], c["int8"]["file_bytes"]
        rows.append([name, target, f"{f['weights']:,} / {f['other_constants']:,} / {f['structure']:,}",
                     f"{q['weights']:,} / {q['other_constants']:,} / {q['structure']:,}",
                     f"{q['weights'] / f['weights']:.3f}", f"{_dense(c, 'weights'):.3f}",
                     f"{(q['other_constants'] + q['structure']) / q['file']:.1%}"])
    return _table(["model", "target", "fp32: weights / other constants / structure", "int8: same",
                   "weights int8 / fp32", "weights int8 / dense fp32", "int8 file outside the weights"], rows)


INT8_REAL = ("resnet18_digits", "vovnet19_slim_digits", "denseshift_resnet18_digits")  # the acceptance models
INT8_SPEED_BAR = {"executorch": 2.0, "onnx": 2.0, "tflite": 1.5}  # issue 15, 1 thread on a VNNI CPU


def int8_acceptance() -> str:
    """Per real-size model and acceptance line: the three targets' values and the verdict (speed: the p50
    and the fastest-run ratios must both clear the bar; rows measured before fastest runs were kept: p50)."""
    d = _load("int8_results.json")["models"]
    rows = []
    for name in [m for m in INT8_REAL if m in d]:
        cells = d[name]["targets"]
        acc = {t: c["accuracy_delta_points"] for t, c in cells.items()}
        size = {t: _dense(c, "file") for t, c in cells.items()}
        speed = {t: [c["latency"]["1"][k] for k in ("speedup_median", "speedup_min_median") if k in c["latency"]["1"]]
                 for t, c in cells.items()}
        lines = [("accuracy within 0.5 points", " / ".join(f"{acc[t]:+.2f}" for t in cells),
                  all(abs(v) <= 0.5 for v in acc.values())),
                 ("bytes <= 0.27x a dense fp32 file", " / ".join(f"{size[t]:.3f}" for t in cells),
                  all(v <= 0.27 for v in size.values())),
                 ("1 thread >= 2x ET, ORT; >= 1.5x TFLite", " / ".join(
                     "x, ".join(f"{v:.2f}" for v in speed[t]) + "x" for t in cells),
                  all(min(speed[t]) >= INT8_SPEED_BAR[t] for t in cells))]
        rows += [[name, line, value, "pass" if ok else "**miss**"] for line, value, ok in lines]
    return _table(["model", "line", f"measured ({' / '.join(cells)}; speed: p50, fastest run)", ""], rows)


def int8_simd() -> str:
    d = _load("int8_results.json")
    simd = d["machine_before"].get("simd", [])
    vnni = [f for f in simd if "vnni" in f]
    return (f"{d['machine_before'].get('cpu', 'CPU')}, {d['machine_before']['cpu_count']} cores, SIMD "
            f"`{' '.join(simd)}` (VNNI: {'yes, ' + ' '.join(vnni) if vnni else 'no'})")


# -- the native runtime (benchmarks/native_runtime.py -> docs/native_runtime.json) ------------------------------

def native_runtime() -> str:
    d = _load("native_runtime.json")
    m, r = d["median"], d["ratios"]
    labels = {"native": "edgekit_runtime from Python", "python": "ExecuTorch Python bindings",
              "c_host": "edgekit_runtime from C"}
    rows = [[labels[b], f"{m[b]['cold_start_s']:.2f} s", f"{m[b]['first_run_s'] * 1e3:.1f} ms",
             f"{m[b]['p50_s'] * 1e3:.1f} ms", f"{m[b]['peak_rss_mb']:.0f} MB"] for b in m]
    table = _table(["path", "cold start", "first run", "p50 (own process)", "peak RSS"], rows)
    same = d["p50_same_process"]["native_over_python"]
    span = lambda k: f"{r[k]['min']:.1f}..{r[k]['max']:.1f}"  # noqa: E731
    return (table + f"\nNative from Python vs the bindings: cold start **{r['cold_start_speedup']['median']:.1f}x** "
            f"faster (rounds {span('cold_start_speedup')}), peak RSS **{r['peak_rss_ratio']['median']:.2f}x** lower, "
            f"p50 native / bindings **{same['median']:.3f}** with both in one process, alternating run by run "
            f"(rounds {same['min']:.3f}..{same['max']:.3f}; {r['p50_native_over_python']['median']:.3f} between "
            f"separate processes). {d['artifact']['model']} .pte ({d['artifact']['bytes'] / 1e6:.1f} MB), "
            f"{d['threads']} thread(s), median of {d['rounds']} interleaved rounds{_load_note(d['machine'])}.\n")


def _load_note(machine: dict) -> str:
    load = machine.get("load_average_1min")
    return (f"; load average {load['before']:.1f} -> {load['after']:.1f} on {machine['cpus']} vCPUs while it ran"
            if load else "")
# -- native kernels (benchmarks/kernels_gemv.py -> docs/kernels.json) -------------------------------------------

def kernels_probes() -> str:
    d = _load("kernels.json")
    bw, big, peak = d["bandwidth_gbs_cpu"], d["bandwidth_512mb_gbs_cpu"], d["peak_gflops_cpu"]
    m = d["machine"]
    return (f"read bandwidth of a sum over {m['stream_buffer_mb']} MB (the size of the largest lut4 weight, so "
            f"the same cache level as the weights) {bw['1']} GB/s at 1 thread, {bw['2']} at 2; over 512 MB "
            f"{big['1']} / {big['2']} GB/s; fp32 FMA peak {peak['1']} / {peak['2']} GFLOP/s (CPU-time basis; "
            f"load average {m['loadavg_before'][0]} before the run, {m['loadavg_after'][0]} after)")


def _gemv_table(d: dict, kernels: list[str] | None = None, bandwidth: bool = False) -> str:
    """CPU ms / effective GB/s per kernel and shape, 1 then 2 threads (rows of one kernels_gemv.py run)."""
    rows = [r for r in d["rows"] if "process" not in r and (kernels is None or r["kernel"] in kernels)]
    shapes = list(dict.fromkeys(tuple(r["shape"]) for r in rows))
    kernels = [k for k in (kernels or dict.fromkeys(r["kernel"] for r in rows)) if any(r["kernel"] == k for r in rows)]
    out = []
    for t in (1, 2):
        if bandwidth:
            out.append([f"{t} thread{'s' if t > 1 else ''}: read bandwidth"] + [f"{d['bandwidth_gbs_cpu'][str(t)]} GB/s"]
                       * len(shapes))
        for i, kn in enumerate(kernels):
            cells = []
            for s in shapes:
                r = next((r for r in rows if r["kernel"] == kn and tuple(r["shape"]) == s and r["threads"] == t), None)
                cells.append("-" if r is None else f"{r['cpu_ms']:.3f} / {r['gbs_cpu']:.1f}")
            label = kn.replace("torch_fp32", "torch fp32")
            out.append([f"{t} thread{'s' if t > 1 else ''}: {label}" if i == 0 and not bandwidth else label] + cells)
    return _table(["kernel"] + [f"{n}x{k}" for n, k in shapes], out)


def kernels_gemv() -> str:
    return _gemv_table(_load("kernels.json"))


def kernels_q8_gemv() -> str:
    return _gemv_table(_load("kernels_quick.json"), ["lut4", "lut3", "sparse24_lut4", "lut4_q8", "lut3_q8", "lut2_q8",
                                                     "sparse24_lut4_q8"], bandwidth=True)


def kernels_pte() -> str:
    d = _load("kernels.json")
    rows = [r for r in d["rows"] if r.get("process") == "pte_child"]
    if not rows:
        return "\n(no .pte rows in this run: it was made with --no-pte)\n"
    cols = list(dict.fromkeys((tuple(r["shape"]), r["threads"]) for r in rows))
    names = {"xnnpack_fp32_pte": "XNNPACK fp32", "xnnpack_int4_pte": "XNNPACK int4 (8da4w, groups of 32, int8 activations)",
             "edgekit_lut4_pte": "edgekit lut4 (`--executorch-kernels edgekit`)", "lut4": "lut4 through ctypes (anchor)"}
    out = []
    for kn, label in names.items():
        cells = [next((f"{r['cpu_ms']:.3f}" for r in rows if r["kernel"] == kn and (tuple(r["shape"]), r["threads"]) == c),
                      "-") for c in cols]
        out.append([label] + cells)
    return _table([".pte"] + [f"{s[0]}x{s[1]} t{t}" for s, t in cols], out)


def kernels_gemm() -> str:
    g = {(r["kernel"], r["threads"]): r for r in _load("kernels.json")["gemm"]}
    a, b = g[("lut4", 1)], g[("lut4", 2)]
    return (f"Prefill GEMM, M = 32, {a['shape'][0]}x{a['shape'][1]} lut4: {a['gflops_cpu']} GFLOP/s at 1 thread "
            f"({a['fraction_of_peak_cpu']:.0%} of the FMA peak), {b['gflops_cpu']} at 2 ({b['fraction_of_peak_cpu']:.0%}); "
            f"torch fp32 {g[('torch_fp32', 1)]['gflops_cpu']} / {g[('torch_fp32', 2)]['gflops_cpu']}")


def _acceptance(acc: dict, keep=lambda key: True) -> str:
    groups: dict[str, list] = {}
    for name, v in acc.items():
        key = name.rsplit("_t", 1)[0]
        if keep(key):
            groups.setdefault(key, []).append(v)
    out = []
    for key, vs in groups.items():
        vals = " / ".join(str(v["value"]) for v in vs)
        verdict = "pass" if all(v["pass"] for v in vs) else "fail" if not any(v["pass"] for v in vs) else "mixed"
        out.append([key, vals, vs[0]["target"], verdict])
    return _table(["line (1 / 2 threads)", "measured", "target", ""], out)


def kernels_acceptance() -> str:
    return _acceptance(_load("kernels.json")["acceptance"]["cpu"])


def kernels_q8_acceptance() -> str:
    return _acceptance(_load("kernels_quick.json")["acceptance"]["cpu"], lambda key: "q8" in key)


def kernels_q8_int4() -> str:
    d = _load("kernels_q8_int4.json")
    out = [[name.rsplit("_t", 1)[0].replace("_vs_xnnpack_int4_", " vs XNNPACK int4 .pte, "),
            f"{d['ratios'][name]['cpu']}x / {d['ratios'][name.replace('_t1', '_t2')]['cpu']}x"]
           for name in d["ratios"] if name.endswith("_t1")]
    return _table(["speed ratio (CPU basis, 1 / 2 threads)", "measured"], out) + f"\n\n(`{d['command']}`)"


FIGURES: dict[str, Callable[[], str]] = {f.__name__: f for f in (
    pte_speedup, pte_speedup_30m, llm_speed, llm_bench_server, llm_perplexity, zoo_accuracy_vovnet, phc_forms, denseshift_accuracy,
    denseshift_bytes, hourglass, compression_recipes, edkm_memory, edkm_llm, first_curve, gradual_sparsity,
    int8_table, int8_bytes, int8_simd, int8_acceptance, native_runtime,
    kernels_probes, kernels_gemv, kernels_pte, kernels_gemm, kernels_acceptance, kernels_q8_gemv,
    kernels_q8_acceptance, kernels_q8_int4)}


# -- native kernels: LLM decode (benchmarks/kernels_decode.py -> docs/kernels_decode.json) ---------------------

_DECODE_LABELS = {"fp32": "fp32 (XNNPACK)", "xnnpack_int4": "XNNPACK int4 (8da4w, g32)",
                  "xnnpack_int4_attn": "XNNPACK int4 + edgekit attention", "lut4": "edgekit lut4",
                  "lut3": "edgekit lut3", "lut2": "edgekit lut2", "lut4_q8": "edgekit lut4_q8 (int8 act.)",
                  "lut3_q8": "edgekit lut3_q8 (int8 act.)", "lut2_q8": "edgekit lut2_q8 (int8 act.)"}


def kernels_decode() -> str:
    d = _load("kernels_decode.json")
    rows = []
    for m, e in d["models"].items():
        for fmt, f in e["formats"].items():
            b = f["bytes_per_token"]
            rows.append([f"{m} ({e['parameters'] / 1e6:.1f}M)", _DECODE_LABELS[fmt], f"{b['weights'] / 1e6:.1f}",
                         f"{b['kv_cache'] / 1e6:.1f}", f"{f['pte_bytes'] / 1e6:.1f}"]
                        + [f"{f['tok_s'][t]:.1f} / {f['tok_s_cpu'][t]:.1f}" for t in ("1", "2")])
    bw = ", ".join(f"{t} thread{'s' if t != '1' else ''} {v['bandwidth_gbs']:.1f} / {v['bandwidth_gbs_cpu']:.1f} GB/s"
                   for t, v in d["threads"].items())
    return (f"\nRead bandwidth (ek_stream_sum over {d['method']['stream_buffer_mb']} MB, wall / CPU basis): {bw}.\n"
            + _table(["model", ".pte", "MB weights / token", "MB KV cache / token", ".pte MB",
                      "tok/s 1 thread (wall / CPU)", "tok/s 2 threads (wall / CPU)"], rows))


def kernels_decode_acceptance() -> str:
    d = _load("kernels_decode.json")
    rows = []
    for m, acc in d["acceptance"].items():
        for basis, label in (("ratios", "wall"), ("ratios_cpu", "CPU")):
            r = d["models"][m][basis]
            for name, target in (("lut3_vs_int4", 1.3), ("lut3_vs_fp32", 4.0), ("lut3_q8_vs_int4", 1.3),
                                 ("lut3_q8_vs_fp32", 4.0), ("lut3_vs_int4_attn", 1.3), ("lut3_q8_vs_int4_attn", 1.3)):
                if name not in r["1"]:
                    continue
                got = [r[t][name] for t in ("1", "2")]
                what = (name.replace("_vs_", " vs ").replace("int4_attn", "XNNPACK int4 + edgekit attention")
                        .replace("int4", "XNNPACK int4").replace("XNNPACK XNNPACK", "XNNPACK"))
                rows.append([m, f"{what} ({label})",
                             " / ".join(f"{g:.2f}x" for g in got), f">= {target}x",
                             "pass" if all(g >= target for g in got) else "fail"])
    return _table(["model", "ratio (basis)", "1 / 2 threads", "target", ""], rows)


def kernels_decode_ppl() -> str:
    d = _load("kernels_decode_ppl.json")
    p = d["perplexity"]
    return (f"`{d['command'].replace('python ', 'python ', 1)}`: {d['checkpoint']} ({', '.join(d['formats'])}, "
            f"{'/'.join(str(b) for b in d['bits'])}-bit indices, linear weights {d['linear_bytes_written']:,} B in the "
            f".pte vs {d['linear_dense_bytes']:,} B fp32). Held-out pydoc text, {p['windows']} windows x "
            f"{p['seq_len']} tokens ({p['tokens']:,} tokens), the .pte prefilling each window in its 16-token "
            f"chunks: perplexity **{p['artifact']:.4f}** (.pte, edgekit kernels) vs **{p['torch']:.4f}** (clustered "
            f"torch model), relative difference {p['rel_diff']:.1e}; largest logit difference "
            f"{p['max_abs_logit_diff']:.1e}. The kernels read the same tables and indices as the torch weights; "
            "only the order of the fp32 additions differs.")


def kernels_decode_ppl_q8() -> str:
    d = _load("kernels_decode_ppl_q8.json")
    p = d["perplexity"]
    return (f"`{d['command']}`: {d['checkpoint']} ({', '.join(d['formats'])}, {'/'.join(str(b) for b in d['bits'])}"
            f"-bit indices, activations {', '.join(d['activations'])}; the same {d['linear_bytes_written']:,} B of "
            f"packed linear weights). Same windows ({p['windows']} x {p['seq_len']} tokens): perplexity "
            f"**{p['artifact']:.4f}** (.pte, q8 kernels) vs **{p['torch']:.4f}** (clustered torch model, fp32 "
            f"activations), {100 * (p['artifact'] - p['torch']) / p['torch']:+.3f}%; largest logit difference "
            f"{p['max_abs_logit_diff']:.2f}; export parity (int8 gate) cosine_min {d['parity']['cosine_min']:.5f}.")


def kernels_decode_threads() -> str:
    d = _load("kernels_decode.json")
    rows = []
    for m, fmts in d.get("decode_threads", {}).items():
        for fmt, by_t in fmts.items():
            alt, f = by_t["2"], d["models"][m]["formats"][fmt]
            rows.append([m, _DECODE_LABELS[fmt], f"{f['tok_s']['2']:.1f} / {f['tok_s_cpu']['2']:.1f}"]
                        + [f"{alt[w]['tok_s']:.1f} / {alt[w]['tok_s_cpu']:.1f} ({alt[w]['pool_vs_this']:.2f}x)"
                           for w in ("calling", "executorch")])
    return _table(["model", ".pte", "kernels' pool (default): tok/s (wall / CPU)",
                   "calling thread: tok/s (pool's speed-up)", "ExecuTorch's pool: tok/s (pool's speed-up)"], rows)


FIGURES.update({f.__name__: f for f in (kernels_decode, kernels_decode_acceptance, kernels_decode_ppl,
                                        kernels_decode_ppl_q8, kernels_decode_threads)})


def render(text: str, source: str = "") -> tuple[str, list[str]]:
    """(text with every block re-rendered, names of the blocks whose content changed)."""
    changed = []

    def sub(m: re.Match) -> str:
        name = m["name"]
        if name not in FIGURES:
            raise SystemExit(f"{source}: unknown figures block {name!r}; known: {', '.join(sorted(FIGURES))}")
        body = FIGURES[name]()
        if body != m["body"]:
            changed.append(name)
        return m[1] + body + m[4]
    return BLOCK.sub(sub, text), changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is out of date")
    args = ap.parse_args(argv)
    stale = []
    for md in sorted(DOCS.glob("*.md")):
        text = md.read_text()
        new, changed = render(text, md.name)
        stale += [f"{md.name}: {name}" for name in changed]
        if changed and not args.check:
            md.write_text(new)
    if stale:
        print(("out of date (run python benchmarks/render_docs.py): " if args.check else "rewrote: ")
              + "; ".join(stale), file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
