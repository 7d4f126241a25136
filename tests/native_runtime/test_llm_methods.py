"""Multi-method LLM artifacts through edgekit_runtime equal the Python runtimes bit for bit: the in-place-cache
.pte (prefill / decode / reset sharing one KV cache) and the explicit-cache .tflite (two signatures)."""

from __future__ import annotations

import json

from tests.conftest import needs_export
from tests.native_runtime.conftest import run_python

CHILD = """
import json, os, sys
import numpy as np
from edgekit import runtime
path, target = sys.argv[1], sys.argv[2]
i64 = lambda *v: np.array(v, np.int64)
outs = {}
for backend in ("python", "native"):
    os.environ["EDGEKIT_PTE_BACKEND"] = os.environ["EDGEKIT_TFLITE_BACKEND"] = backend
    s = runtime.load(path)
    toks = np.arange(1, 9, dtype=np.int64).reshape(1, 8)
    if target == "executorch":
        s.method("reset").run([i64(0)])
        seq = [s.method("prefill").run([toks, i64(0)])[0]]
        seq += [s.method("decode").run([i64(t).reshape(1, 1), i64(8 + n)])[0] for n, t in enumerate((5, 9, 2))]
        s.method("reset").run([i64(0)])                    # a new conversation: the same prefill again
        seq.append(s.method("prefill").run([toks, i64(0)])[0])
    else:
        k = np.zeros(s.method("prefill").inputs[2].shape, np.float32); v = np.zeros_like(k)
        logits, k, v = s.method("prefill").run([toks, i64(0), k, v])[:3]
        seq = [logits]
        for n, t in enumerate((5, 9, 2)):
            logits, k, v = s.method("decode").run([i64(t).reshape(1, 1), i64(8 + n), k, v])[:3]
            seq.append(logits)
    outs[backend] = (type(s).__name__, seq)
py, nat = outs["python"][1], outs["native"][1]
print(json.dumps({"sessions": [outs[b][0] for b in outs],
                  "max_abs": max(float(np.abs(a - b).max()) for a, b in zip(py, nat)), "steps": len(nat),
                  "decode_differs": bool(not np.array_equal(nat[1], nat[2])),
                  "reset_repeats": bool(target != "executorch" or np.array_equal(nat[0], nat[-1]))}))
"""


def _check(path, target):
    proc = run_python(f"import sys; sys.argv = ['x', {str(path)!r}, {target!r}]\n" + CHILD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["sessions"][1] == "NativeSession" and res["max_abs"] == 0.0, res
    assert res["decode_differs"] and res["reset_repeats"], res


@needs_export
def test_llm_pte_in_place_cache(llm_pte, native_lib):
    _check(llm_pte, "executorch")


@needs_export
def test_llm_tflite_explicit_cache(tiny_llm_artifacts, native_lib):
    _check(tiny_llm_artifacts["tflite"], "tflite")
