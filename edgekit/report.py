"""Plain-text tables and markdown reports for export and benchmark results."""

from __future__ import annotations


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join([line, sep, *body])


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _fmt(c: object) -> str:
    if c is None:
        return "-"
    if isinstance(c, float):
        return f"{c:.3f}" if abs(c) < 1000 else f"{c:.0f}"
    return str(c)


def machine_line(machine: dict) -> str:
    """The machine facts results depend on (``bench.machine_info()``), in one line: SIMD features,
    NumPy's SIMD paths and the upstream problems `edgekit doctor` checks."""
    issues = ", ".join(f"{k}: {v}" for k, v in machine.get("known_issues", {}).items()) or "-"
    return (f"CPU features: {' '.join(machine.get('simd', [])) or '?'}; NumPy SIMD: "
            f"{' '.join(machine.get('numpy_simd', [])) or '?'}; known upstream problems (`edgekit doctor`): "
            f"{issues}")


def human_bytes(n: int | None) -> str:
    """Binary units, labelled as such: 1 KiB = 1024 B, 1 MiB = 1024 KiB."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def parity_cell(parity: dict | None) -> str:
    if not parity:
        return "-"
    if parity.get("mode") == "structural":
        return "structural ok" if parity["ok"] else "structural FAIL"
    m = parity["metrics"]
    tag = "ok" if parity["ok"] else "FAIL"
    top1 = f" top1 {m['top1'] * 100:.1f}%" if "top1" in m else ""
    return f"{tag} cos {m['cosine_min']:.7f}{top1}"


def cost_cell(parity: dict | None) -> str:
    """Compression cost per output (artifact vs the original model), with metrics that fit each output."""
    cost = (parity or {}).get("cost")
    if not cost:
        return "-"
    parts = []
    for o in cost["per_output"]:
        loss = f"top1_flip {o['top1_flip']:.3f}" if "top1_flip" in o else f"cos_loss {o['cos_loss']:.4f}"
        parts.append(f"{o['name']} ({o['kind']}) {loss} cos {o['cosine_mean']:.5f} rel_l2 {o['rel_l2']:.4f}")
    tag = ("ok" if cost["ok"] else "FAIL") if cost.get("gate") else "not gated (--max-loss off)"
    stand_in = "" if cost.get("measured_on") == "artifact" else " [on the compressed PyTorch model]"
    return f"{tag} " + "; ".join(parts) + stand_in


def cost_lines(parity: dict | None) -> list[str]:
    """One line per output: the cost metrics and the limits that apply (for `inspect` and reports)."""
    cost = (parity or {}).get("cost")
    if not cost:
        return []
    limits: dict[str, list[str]] = {}
    for lim in cost.get("limits", []):
        limits.setdefault(lim["output"], []).append(f"{lim['metric']} <= {lim['max']:g} ({lim['source']})")
    lines = []
    for o in cost["per_output"]:
        top1 = f"top1_flip {o['top1_flip']:.4f}, " if "top1_flip" in o else ""
        lines.append(f"{o['name']} ({o['kind']}): {top1}cos_loss {o['cos_loss']:.5f}, rel_l2 {o['rel_l2']:.5f}, "
                     f"max abs err {o['max_abs_err']:.4g}, mean abs err {o['mean_abs_err']:.4g}, "
                     f"PSNR {o['psnr_db']:.1f} dB; limit {', '.join(limits.get(o['name'], ['none (--max-loss off)']))}")
    return lines


def latency_cell(result: dict | None, key: str) -> str:
    if not result:
        return "-"
    lat = result["latency"]
    pct = key.split("_")[0]
    mark = "~" if pct in lat.get("estimates", []) else ""
    return f"{mark}{lat[key]:.3f}"


def llm_bench_table(results: list[dict], servers: list[str] | None = None) -> str:
    """LLM benchmark results (edgekit.llm_bench): time to first token, prefill and decode tokens/s, per-token ms."""
    rows = [[r["target"], r["runtime"], r["threads"], human_bytes(r["model_bytes"]),
             f"{r['llm']['prompt_tokens']}+{r['llm']['new_tokens']}", r["latency"]["runs"],
             f"{r['llm']['ttft_ms']['p50_ms']:.2f}", f"{r['llm']['prefill_tokens_per_s']:.1f}",
             f"{r['llm']['decode_tokens_per_s']:.1f}", latency_cell(r, "p50_ms"), latency_cell(r, "p90_ms"),
             latency_cell(r, "p99_ms"), f"{r['peak_rss_mb']:.0f}"] for r in results]
    headers = ["target", "runtime", "threads", "bytes", "prompt+new", "decode steps", "TTFT ms",
               "prefill tok/s", "decode tok/s", "p50 ms/token", "p90 ms/token", "p99 ms/token", "peak RSS MB"]
    note = ("\n(TTFT: median prefill of the prompt; decode tok/s: timed steps / their total time; "
            "~ marks a percentile estimated from too few steps)")
    if servers:
        return table(["server", *headers], [[s, *row] for s, row in zip(servers, rows)]) + note
    return table(headers, rows) + note
