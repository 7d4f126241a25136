"""Measure the benchmark server: API latency under 16 concurrent pollers, the benchmark's p50 drift under
that load, and local vs server p50 of the same artifact.

    .venv/bin/python benchmarks/server_load.py [--pollers 16] [--seconds 3] [--out out/server_load.json]

Exports a small MLP to ONNX, starts `edgekit serve` on a free loopback port with a temp data dir, and prints
a markdown table (the figures in docs/server.md come from this script).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

_EXPORT = """
import sys, numpy as np, torch, edgekit
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(256, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
                        torch.nn.Linear(1024, 10)).eval()
x = np.random.default_rng(0).standard_normal((1, 256)).astype(np.float32)
edgekit.export(m, (x,), "onnx", sys.argv[1], parity_samples=4, show_progress=False)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pollers", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=3.0, help="min_seconds of each benchmark")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="out/server_load.json")
    args = ap.parse_args()
    from edgekit.bench import benchmark
    from edgekit.client import Client

    tmp = Path(tempfile.mkdtemp(prefix="edgekit-load-"))
    art = tmp / "mlp"
    subprocess.run([sys.executable, "-c", _EXPORT, str(art)], check=True)
    cfg = {"runs": 200, "warmup": 20, "min_seconds": args.seconds, "threads": 1}

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "edgekit.cli", "serve", "--port", str(port), "--data-dir",
                               str(tmp / "data")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Rounds of (local, server quiet, server under 16 pollers), interleaved so machine noise hits all three
    # alike; we report the median over rounds of the within-round ratios.
    rows, lat = [], []
    try:
        _wait_up(url)
        c = Client(url)
        a, _ = c.upload(art)
        before = _histogram(url)
        for _ in range(args.rounds):
            local = benchmark(art, **cfg)["latency"]["p50_ms"]
            quiet = c.wait(c.submit(a["id"], **cfg)["id"], poll_s=1.0)["result"]["latency"]["p50_ms"]
            loaded = _loaded_run(c, url, a["id"], cfg, args.pollers, lat)["latency"]["p50_ms"]
            rows.append((local, quiet, loaded))
        after = _histogram(url)
    finally:
        server.terminate()
        server.wait(20)
    ms = np.asarray(lat) * 1e3
    delta = [(le, after[le] - before.get(le, 0)) for le in after]
    drift = [100 * (ld / q - 1) for _, q, ld in rows]
    vs_local = [100 * (q / lo - 1) for lo, q, _ in rows]
    figures = {
        "pollers": args.pollers, "rounds": args.rounds, "api_requests": int(ms.size),
        "api_p50_ms": float(np.percentile(ms, 50)), "api_p99_ms": float(np.percentile(ms, 99)),
        "api_max_ms": float(ms.max()),
        # Server side (from /v1/metrics): time inside the app, without client-side queueing on the GIL.
        "server_side_p50_ms": _quantile(delta, 0.5) * 1e3, "server_side_p99_ms": _quantile(delta, 0.99) * 1e3,
        "local_p50_ms": float(np.median([r[0] for r in rows])),
        "server_quiet_p50_ms": float(np.median([r[1] for r in rows])),
        "server_loaded_p50_ms": float(np.median([r[2] for r in rows])),
        "drift_loaded_vs_quiet_pct": float(np.median(drift)),
        "drift_range_pct": [round(min(drift), 2), round(max(drift), 2)],
        "server_vs_local_pct": float(np.median(vs_local)),
        "server_vs_local_range_pct": [round(min(vs_local), 2), round(max(vs_local), 2)],
        "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2))
    print("| figure | value |\n|---|---|")
    for k, v in figures.items():
        print(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |")


def _loaded_run(c, url: str, artifact_id: str, cfg: dict, pollers: int, lat: list[float]) -> dict:
    """One benchmark job while ``pollers`` threads poll it as fast as they can."""
    job_id = c.submit(artifact_id, **cfg)["id"]
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=url, timeout=30) as h:
            while not stop.is_set():
                t0 = time.perf_counter()
                h.get(f"/v1/benchmarks/{job_id}").raise_for_status()
                lat.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=poll) for _ in range(pollers)]
    for t in threads:
        t.start()
    try:
        return c.wait(job_id, poll_s=0.5)["result"]
    finally:
        stop.set()
        for t in threads:
            t.join()


def _histogram(url: str) -> dict[float, int]:
    """Cumulative counts of edgekit_http_request_seconds by upper bound."""
    out = {}
    for line in httpx.get(url + "/v1/metrics").text.splitlines():
        if line.startswith("edgekit_http_request_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            out[float("inf") if le == "+Inf" else float(le)] = int(line.rsplit(" ", 1)[1])
    return out


def _quantile(cumulative: list[tuple[float, int]], q: float) -> float:
    """Quantile from cumulative histogram buckets, linear within a bucket (the Prometheus way)."""
    total = cumulative[-1][1]
    rank, prev_le, prev_n = q * total, 0.0, 0
    for le, n in cumulative:
        if n >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_n) / max(n - prev_n, 1)
        prev_le, prev_n = le, n
    return prev_le


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not start")


if __name__ == "__main__":
    main()
