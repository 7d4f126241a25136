"""The main job: one zoo model -> Core ML, ExecuTorch, TFLite, ONNX -> parity -> benchmark -> report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from edgekit import TARGETS
from edgekit.errors import EdgekitError
from edgekit.report import (cost_cell, cost_lines, human_bytes, latency_cell, machine_line, markdown_table,
                            parity_cell, table)


def run_demo(model: str, out: Path, *, runs: int = 50, threads: int = 1, via_server: bool = True,
             say=lambda msg: None, recipe=None, max_loss=None) -> tuple[int, str]:
    """Export ``model`` everywhere, then benchmark through a local `edgekit serve` (or in-process).

    With ``recipe`` the model is compressed first and the report shows the compression cost
    per output next to the conversion parity. Progress goes to ``say``; returns (exit code, the summary table).
    """
    import contextlib

    from edgekit.bench import machine_info
    from edgekit.exporters.pipeline import export_spec
    from edgekit.model_zoo import get_spec
    from edgekit.runtime import available_runtimes_for

    spec = get_spec(model)
    say(f"[1/3] exporting {spec.name} to {', '.join(TARGETS)} (parity on {32} real digits samples)")
    exports = export_spec(spec, TARGETS, out, on_start=lambda t: say(f"      {t}: converting ..."),
                          on_result=lambda t, r: say(f"      {t}: {_status(r)}"), recipe=recipe, max_loss=max_loss,
                          allow_decompressed=recipe is not None)

    where = "through a local benchmark server" if via_server else "in a child process"
    say(f"[2/3] benchmarking every artifact this machine can run {where} ({threads} thread(s), >= {runs} runs)")
    with contextlib.ExitStack() as stack:
        bench = _server_bench(stack, say) if via_server else _local_bench
        benches = _bench_all(exports, bench, runs, threads, say, available_runtimes_for)

    say("[3/3] writing the report")
    compressed = recipe is not None
    headers = ["target", "bytes", "parity", *(["cost vs original"] if compressed else []), "p50 ms", "p90 ms", "note"]
    rows = []
    for target in TARGETS:
        art, b = exports[target], benches.get(target)
        if isinstance(art, EdgekitError):
            rows.append([target, "-", "FAILED", *(["-"] if compressed else []), "-", "-", art.message[:60]])
            continue
        bench = b if isinstance(b, dict) else None
        cost = [cost_cell(art.manifest["parity"])] if compressed else []
        rows.append([target, human_bytes(art.model_bytes), parity_cell(art.manifest["parity"]), *cost,
                     latency_cell(bench, "p50_ms"), latency_cell(bench, "p90_ms"),
                     "" if bench else str(b)])
    summary = table(headers, rows)
    report = out / "report.md"
    machine = machine_info()  # the same facts every benchmark result records
    report.write_text(_markdown(spec, rows, headers, exports, benches, machine))
    (out / "report.json").write_text(json.dumps({
        "model": spec.name,
        "machine": machine,
        "exports": {t: (a.manifest if not isinstance(a, EdgekitError) else {"error": str(a)}) for t, a in exports.items()},
        "benchmarks": benches,
    }, indent=2, default=str))
    summary += f"\n\nreport: {report}"
    failed = [t for t, a in exports.items() if isinstance(a, EdgekitError)]
    return (1 if failed else 0), summary


def _local_bench(path, runs: int, threads: int) -> dict:
    from edgekit.bench import benchmark

    return benchmark(path, runs=runs, threads=threads)


def _server_bench(stack, say):
    from edgekit.client import Client
    from edgekit.local_server import local_server

    url = stack.enter_context(local_server())
    say(f"      local server: {url} (dashboard: {url}/)")
    client = Client(url)

    def bench(path, runs: int, threads: int) -> dict:
        art, _ = client.upload(path)
        job = client.wait(client.submit(art["id"], runs=runs, threads=threads)["id"])
        if job["status"] != "succeeded":
            raise EdgekitError(job.get("reason") or job["status"], f"server job {job['status']}: "
                               f"{(job.get('error') or {}).get('message')}")
        return job["result"]

    return bench


def _bench_all(exports, bench, runs, threads, say, available_runtimes_for) -> dict:
    benches: dict[str, dict | str] = {}
    for target, art in exports.items():
        if isinstance(art, EdgekitError):
            benches[target] = "export failed"
            continue
        probe = available_runtimes_for(target)
        if not probe["available"]:
            benches[target] = probe["reason"]
            say(f"      {target}: skipped ({probe['reason']})")
            continue
        try:
            benches[target] = bench(art.path, runs, threads)
            say(f"      {target}: p50 {benches[target]['latency']['p50_ms']:.3f} ms")
        except EdgekitError as err:
            benches[target] = f"failed: {err.message}"
    return benches


def _status(result) -> str:
    if isinstance(result, EdgekitError):
        return f"FAILED {result}"
    cost = f", cost vs original {cost_cell(result.manifest['parity'])}" if _cost(result) else ""
    return f"{human_bytes(result.model_bytes)}, parity {parity_cell(result.manifest['parity'])}{cost}"


def _cost(art) -> bool:
    return not isinstance(art, EdgekitError) and bool(art.manifest["parity"].get("cost"))


def _markdown(spec, rows, headers, exports, benches, machine) -> str:
    lines = [
        f"# edgekit report: {spec.name}",
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} on {machine.get('cpu', '?')} "
        f"({machine['cpu_count']} cores, load {', '.join(f'{x:.2f}' for x in machine.get('load_average', []))})",
        "",
        machine_line(machine),
        "",
        markdown_table(headers, rows),
        "",
        "Parity: the worst sample's cosine similarity and the top-1 agreement (class outputs) against PyTorch "
        "on held-out digits images; Core ML cannot run on Linux, so its package is checked structurally "
        "(I/O names and shapes, op list, weight encodings).",
        *(["Cost: the same inputs through the ORIGINAL (uncompressed) model, compared with the artifact: "
            "top1_flip (share of samples whose class changed) for class outputs, 1 - mean cosine (cos_loss) for "
            "the others; per output below."] if any(_cost(a) for a in exports.values()) else []),
        "Latency: batch 1, measured by the local benchmark server (one job at a time, a fresh sandboxed process per job) after warmup; "
        "`~` marks a percentile estimated from fewer runs than it needs.",
        "",
        "## Benchmarks in full",
    ]
    for target, b in benches.items():
        if isinstance(b, dict):
            lat = b["latency"]
            lines.append(f"- **{target}** ({b['runtime']} {b['runtime_version']}, {b['threads']} thread): "
                         f"{lat['runs']} runs, min {lat['min_ms']:.3f} / p50 {lat['p50_ms']:.3f} / "
                         f"p90 {lat['p90_ms']:.3f} / p99 {lat['p99_ms']:.3f} / max {lat['max_ms']:.3f} ms, "
                         f"cv {lat['cv']:.3f}, {lat['outliers']} outliers; cold start {b['cold_start_ms']:.0f} ms, "
                         f"first run {b['first_run_ms']:.1f} ms, peak RSS {b['peak_rss_mb']:.0f} MiB, "
                         f"sha256 {b['sha256'][:16]}…")
        else:
            lines.append(f"- **{target}**: not benchmarked: {b}")
    costs = [(t, a) for t, a in exports.items() if _cost(a)]
    if costs:
        lines += ["", "## Compression cost per output (artifact vs the original model)"]
        for target, a in costs:
            lines += [f"- **{target}**: {line}" for line in cost_lines(a.manifest["parity"])]
    lines += ["", "## Artifacts"]
    for target, a in exports.items():
        if not isinstance(a, EdgekitError):
            lines.append(f"- {target}: `{a.path}` ({a.model_bytes:,} bytes)")
    return "\n".join(lines) + "\n"
