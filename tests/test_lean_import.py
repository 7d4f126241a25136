"""The device side never imports torch: checked in a subprocess where torch cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import needs_export

BLOCK_TORCH = "import sys; sys.modules['torch'] = None  # any `import torch` now raises ImportError\n"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, timeout=300)


def test_import_edgekit_and_runtime_without_torch():
    proc = _run("import edgekit, edgekit.runtime, edgekit.bench, edgekit.stats, edgekit.cli, edgekit.generate, "
                "edgekit.first_session\n"
                "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\nprint('ok')")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_blocker_really_blocks_torch():
    proc = _run("import torch")
    assert proc.returncode != 0 and "import of torch halted" in proc.stderr


@needs_export
def test_runtime_runs_tflite_and_onnx_without_torch(tiny_artifacts):
    code = (
        "import json, numpy as np\nfrom edgekit import runtime\nfrom edgekit.artifact import load_artifact\n"
        "res = {}\n"
        f"for path in {json.dumps([str(tiny_artifacts['tflite']), str(tiny_artifacts['onnx'])])}:\n"
        "    art = load_artifact(path); ins, outs = art.reference_io()\n"
        "    got = runtime.load(path).run(ins)[0]\n"
        "    res[art.target] = float(np.abs(got - outs['output_0']).max())\n"
        "print(json.dumps(res))\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    errs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(errs) == {"tflite", "onnx"}
    assert all(e < 1e-4 for e in errs.values()), errs
