"""A test-only benchmark child: misbehaves according to the job's seed, else runs the real one.

The server runs it instead of edgekit.bench_child when started with
EDGEKIT_SERVER_BENCH_MODULE=fault_child and this folder on PYTHONPATH.
"""

import json
import os
import signal
import subprocess
import sys
import time

SEGFAULT, HANG, GRANDCHILD, ABORT, SLOW, QUICK, MEMORY = 1001, 1002, 1003, 1004, 1005, 1006, 1007
GRANDCHILD_MARK = "edgekit-fault-grandchild"


def main(path: str, result_file: str, config_json: str) -> None:
    cfg = json.loads(config_json)
    seed = cfg.get("seed")

    def phase(name: str) -> None:
        with open(cfg["status_file"], "w") as f:
            f.write(name)

    if seed == SEGFAULT:
        phase("load")
        os.kill(os.getpid(), signal.SIGSEGV)
    elif seed == ABORT:
        phase("first_run")
        print("fault_child: aborting in first_run", file=sys.stderr, flush=True)
        os.abort()
    elif seed == HANG:
        phase("warmup")
        time.sleep(3600)
    elif seed == GRANDCHILD:
        phase("timed_runs")
        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"
        subprocess.Popen([sys.executable, "-c", code, GRANDCHILD_MARK])
        time.sleep(3600)
    elif seed == MEMORY:
        phase("load")
        _ = bytearray(1 << 40)  # far past RLIMIT_AS: MemoryError
    elif seed in (SLOW, QUICK):
        phase("timed_runs")
        if seed == SLOW:
            time.sleep(3)
        with open(result_file, "w") as f:
            json.dump(_fake_result(cfg), f)
    else:
        from edgekit.bench_child import main as real_main

        real_main(path, result_file, config_json)


def _fake_result(cfg: dict) -> dict:
    lat = {"runs": 1, "min_ms": 1.0, "p50_ms": 1.0, "p90_ms": 1.0, "p99_ms": 1.0, "max_ms": 1.0, "mean_ms": 1.0,
           "trimmed_mean_ms": 1.0, "std_ms": 0.0, "cv": 0.0, "outliers": 0, "estimates": ["p90", "p99"]}
    return {"target": "onnx", "runtime": "fake", "threads": cfg["threads"], "model_bytes": 1, "latency": lat,
            "cold_start_ms": 0.0, "peak_rss_mb": 1.0, "finished_at": time.time()}


if __name__ == "__main__":
    main(*sys.argv[1:4])
