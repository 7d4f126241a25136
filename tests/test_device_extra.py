"""The `device` extra alone (no torch) installs and runs .tflite and .onnx artifacts."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_export

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-device"


def _device_venv() -> Path:
    """A venv with only `.[device]` installed; rebuilt when pyproject or constraints change."""
    stamp_value = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes()).hexdigest()
    stamp = VENV / ".stamp"
    python = VENV / "bin" / "python"
    if stamp.exists() and stamp.read_text() == stamp_value and python.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"),
                           "-e", f"{ROOT}[device]"], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"installing the device extra failed:\n{proc.stderr[-3000:]}")
    stamp.write_text(stamp_value)
    return python


@needs_export
def test_device_extra_runs_tflite_and_onnx_without_torch(tiny_artifacts):
    python = _device_venv()
    code = (
        "import importlib.util, json, numpy as np\n"
        "from edgekit import runtime\nfrom edgekit.artifact import load_artifact\n"
        "assert importlib.util.find_spec('torch') is None, 'torch is installed in the device venv'\n"
        "res = {'probe': {k: v['available'] for k, v in runtime.available_runtimes().items()}}\n"
        f"for path in {json.dumps([str(tiny_artifacts['tflite']), str(tiny_artifacts['onnx'])])}:\n"
        "    art = load_artifact(path); ins, outs = art.reference_io()\n"
        "    res[art.target] = float(np.abs(runtime.load(path).run(ins)[0] - outs['output_0']).max())\n"
        "print(json.dumps(res))\n"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["probe"] == {"onnx": True, "tflite": True, "executorch": False, "coreml": False}
    assert res["tflite"] < 1e-4 and res["onnx"] < 1e-4


@needs_export
def test_device_extra_benchmarks_without_torch(tiny_artifacts):
    python = _device_venv()
    proc = subprocess.run([str(VENV / "bin" / "edgekit"), "bench", str(tiny_artifacts["onnx"]), "--runs", "20",
                           "--min-seconds", "0.2"], capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "onnxruntime" in proc.stdout and "p50 ms" in proc.stdout
    assert python.exists()


@needs_export
@pytest.mark.parametrize("target", ["onnx", "tflite"])
def test_device_extra_generates_and_benchmarks_llm_artifacts(tiny_llm_artifacts, target):
    """`edgekit generate` and `edgekit bench` on LLM artifacts with the device extra alone (no torch installed).
    (.pte: the next test, through the C runtime.)"""
    _device_venv()
    art = str(tiny_llm_artifacts[target])
    gen = subprocess.run([str(VENV / "bin" / "edgekit"), "generate", art, "--prompt", "The for statement",
                          "--max-new-tokens", "6", "--temperature", "0"], capture_output=True, text=True, timeout=300,
                         cwd="/")
    assert gen.returncode == 0, gen.stderr[-2000:]
    assert gen.stdout.startswith("The for statement") and "tok/s decode" in gen.stderr
    bench = subprocess.run([str(VENV / "bin" / "edgekit"), "bench", art, "--runs", "16", "--warmup", "0",
                            "--min-seconds", "0", "--prompt-tokens", "8", "--new-tokens", "16"],
                           capture_output=True, text=True, timeout=300, cwd="/")
    assert bench.returncode == 0, bench.stderr[-2000:]
    assert "decode tok/s" in bench.stdout and "8+16" in bench.stdout


@needs_export
def test_device_extra_generates_and_benchmarks_pte_through_the_native_runtime(tiny_llm_pte):
    """A .pte with the device extra alone: no torch and no executorch package, so `edgekit generate` and
    `edgekit bench` go through the C runtime (libedgekit_runtime from `make native`, linked against the executorch
    wheel's libraries of the build venv); greedy text equals the Python bindings' text in the export venv."""
    from edgekit.runtime.native import library_path

    if not library_path().is_file():
        pytest.skip(f"the native runtime is not built ({library_path()}): `make native`")
    _device_venv()
    gen_args = ["generate", str(tiny_llm_pte), "--prompt", "The for statement", "--max-new-tokens", "6",
                "--temperature", "0"]
    want = subprocess.run([sys.executable, "-m", "edgekit.cli", *gen_args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert want.returncode == 0, want.stderr[-2000:]
    gen = subprocess.run([str(VENV / "bin" / "edgekit"), *gen_args], capture_output=True, text=True, timeout=300,
                         cwd="/")
    assert gen.returncode == 0, gen.stderr[-2000:]
    assert gen.stdout == want.stdout and gen.stdout.startswith("The for statement")
    bench = subprocess.run([str(VENV / "bin" / "edgekit"), "bench", str(tiny_llm_pte), "--runs", "16", "--warmup",
                            "0", "--min-seconds", "0", "--prompt-tokens", "8", "--new-tokens", "16"],
                           capture_output=True, text=True, timeout=300, cwd="/")
    assert bench.returncode == 0, bench.stderr[-2000:]
    assert "decode tok/s" in bench.stdout and "8+16" in bench.stdout
