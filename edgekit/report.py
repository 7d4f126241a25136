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
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
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
