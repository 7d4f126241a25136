"""The README's main job, end to end on a small model: export everywhere, benchmark through `edgekit serve`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import needs_export

pytestmark = needs_export


def test_demo_exports_all_targets_and_benchmarks_through_the_local_server(tmp_path):
    pytest.importorskip("fastapi")
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "demo", "--model", "resnet_tiny", "--out", str(out),
                           "--runs", "20"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "through a local benchmark server" in proc.stderr and "local server: http://127.0.0.1:" in proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.split()}
    for target in ("executorch", "tflite", "onnx"):
        assert "ok cos" in lines[target] and "top1 100.0%" in lines[target]
    assert "structural ok" in lines["coreml"] and "needs macOS" in lines["coreml"]
    report = json.loads((out / "report.json").read_text())
    for target in ("executorch", "tflite", "onnx"):
        bench = report["benchmarks"][target]
        assert bench["latency"]["runs"] >= 20 and bench["latency"]["p50_ms"] > 0
        model_file = report["exports"][target]["model_file"]
        written = {f["path"]: f["sha256"] for f in report["exports"][target]["files"]}
        assert bench["sha256"] == written[model_file]  # the server measured exactly the exported bytes
    md = (out / "report.md").read_text()
    assert "| executorch |" in md and "p50 ms" in md and "## Benchmarks in full" in md
    # the report and every benchmark record the same machine facts (bench.machine_info)
    facts = ("cpu", "simd", "numpy_simd", "known_issues")
    for target in ("executorch", "tflite", "onnx"):
        assert {k: report["benchmarks"][target]["machine"][k] for k in facts} == {k: report["machine"][k] for k in facts}
    assert "CPU features: " in md and "numpy_float16_sort: " in md
