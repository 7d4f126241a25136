"""The main job: one zoo model -> Core ML, ExecuTorch, TFLite, ONNX -> parity -> benchmark -> report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from edgekit import TARGETS
from edgekit.errors import EdgekitError
from edgekit.report import human_bytes, latency_cell, machine_line, markdown_table, parity_cell, table


def run_demo(model: str, out: Path, *, runs: int = 50, threads: int = 1, via_server: bool = True,
             say=lambda msg: None) -> tuple[int, str]:
    """Export ``model`` everywhere, then benchmark through a local `edgekit serve` (or in-process).

    Progress goes to ``say``; returns (exit code, the summary table).
    """
    import contextlib

    from edgekit.bench import machine_info
    from edgekit.exporters.pipeline import export_spec
    from edgekit.model_zoo import get_spec
    from edgekit.runtime import available_runtimes_for

    spec = get_spec(model)
    say(f"[1/3] exporting {spec.name} to {', '.join(TARGETS)} (parity on {32} real digits samples)")
    exports = export_spec(spec, TARGETS, out, on_start=lambda t: say(f"      {t}: converting ..."),
                          on_result=lambda t, r: say(f"      {t}: {_status(r)}"))

    where = "through a local benchmark server" if via_server else "in a child process"
    say(f"[2/3] benchmarking every artifact this machine can run {where} ({threads} thread(s), >= {runs} runs)")
    with contextlib.ExitStack() as stack:
        bench = _server_bench(stack, say) if via_server else _local_bench
        benches = _bench_all(exports, bench, runs, threads, say, available_runtimes_for)

    say("[3/3] writing the report")
    headers = ["target", "bytes", "parity", "p50 ms", "p90 ms", "note"]
    rows = []
    for target in TARGETS:
        art, b = exports[target], benches.get(target)
        if isinstance(art, EdgekitError):
            rows.append([target, "-", "FAILED", "-", "-", art.message[:60]])
            continue
        bench = b if isinstance(b, dict) else None
        rows.append([target, human_bytes(art.model_bytes), parity_cell(art.manifest["parity"]),
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
    return f"{human_bytes(result.model_bytes)}, parity {parity_cell(result.manifest['parity'])}"


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
        "Parity: the worst sample's cosine similarity and the top-1 agreement against PyTorch on held-out "
        "digits images; Core ML cannot run on Linux, so its package is checked structurally "
        "(I/O names and shapes, op list, weight encodings).",
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
                         f"first run {b['first_run_ms']:.1f} ms, peak RSS {b['peak_rss_mb']:.0f} MB, "
                         f"sha256 {b['sha256'][:16]}…")
        else:
            lines.append(f"- **{target}**: not benchmarked: {b}")
    lines += ["", "## Artifacts"]
    for target, a in exports.items():
        if not isinstance(a, EdgekitError):
            lines.append(f"- {target}: `{a.path}` ({a.model_bytes:,} bytes)")
    return "\n".join(lines) + "\n"
