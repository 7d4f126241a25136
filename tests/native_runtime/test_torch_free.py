"""Without torch and ExecuTorch's Python bindings, edgekit.runtime.load runs .pte (native), .tflite and .onnx."""

from __future__ import annotations

import json

from tests.conftest import needs_export
from tests.native_runtime.conftest import run_python

# Installed before anything else in the child: `import torch` and the ExecuTorch bindings fail as they would
# where torch is not installed (executorch itself stays importable, as when installed with --no-deps).
BLOCKER = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith(("torch.", "executorch.extension.pybindings")):
            raise ImportError(f"{name} is blocked: no torch here")
sys.meta_path.insert(0, _Block())
"""


@needs_export
def test_runtime_load_without_torch(tiny_artifacts, native_lib):
    paths = {t: str(tiny_artifacts[t]) for t in ("executorch", "tflite", "onnx")}
    code = BLOCKER + f"""
import json, sys
import numpy as np
from edgekit import runtime
from edgekit.artifact import load_artifact
try:
    import torch
    raise SystemExit("torch imported")
except ImportError:
    pass
res = {{}}
for target, path in {json.dumps(paths)}.items():
    ins, outs = load_artifact(path).reference_io()
    session = runtime.load(path)
    y = session.run(ins)[0]
    ref = outs["output_0"]
    cos = float((y.ravel() @ ref.ravel()) / (np.linalg.norm(y) * np.linalg.norm(ref)))
    res[target] = {{"session": type(session).__name__, "max_abs": float(np.abs(y - ref).max()), "cos": cos}}
res["torch_loaded"] = any(m == "torch" or m.startswith("torch.") for m in sys.modules)
print(json.dumps(res))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["torch_loaded"] is False
    assert res["executorch"]["session"] == "NativeSession"
    for target in ("executorch", "tflite", "onnx"):
        assert res[target]["cos"] >= 0.99999 and res[target]["max_abs"] < 1e-4, res


@needs_export
def test_backend_env_selects_native_tflite(tiny_artifacts, native_lib):
    import os

    code = f"""
from edgekit import runtime
from edgekit.artifact import load_artifact
import numpy as np
path = {str(tiny_artifacts['tflite'])!r}
ins, outs = load_artifact(path).reference_io()
s = runtime.load(path)
print(type(s).__name__, float(np.abs(s.run(ins)[0] - outs['output_0']).max()))
"""
    proc = run_python(code, env={**os.environ, "EDGEKIT_TFLITE_BACKEND": "native"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    name, err = proc.stdout.split()[-2:]
    assert name == "NativeSession" and float(err) < 1e-4


@needs_export
def test_generate_pte_without_torch(llm_pte, native_lib):
    """`edgekit generate` on an LLM .pte without torch writes what the Python bindings write."""
    import os

    argv = ["edgekit", "generate", str(llm_pte), "--prompt", "def add(a, b):", "--max-new-tokens", "12"]
    run = f"import sys\nfrom edgekit.cli import main\nsys.argv = {argv!r}\nmain()\n"
    blocked = run_python(BLOCKER + run + "assert 'torch' not in sys.modules\n")
    assert blocked.returncode == 0, blocked.stderr[-3000:]
    reference = run_python(run, env={**os.environ, "EDGEKIT_PTE_BACKEND": "python"})
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert blocked.stdout.startswith("def add(a, b):") and blocked.stdout == reference.stdout
