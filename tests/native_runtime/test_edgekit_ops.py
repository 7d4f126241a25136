"""A .pte with edgekit:: kernels runs through edgekit_runtime: alone, after ExecuTorch's Python bindings
loaded the same kernel library (no re-registration abort), and from a C program linked to edgekit_runtime."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from tests.conftest import needs_export
from tests.native_runtime.conftest import run_python
from tests.native_runtime.test_docs_example import _example


@pytest.fixture(scope="module")
def ops_artifact(tmp_path_factory):
    from edgekit.exporters.pipeline import export_model
    from edgekit.kernels.executorch_ops import ops_library_path

    from tests.kernels.test_executorch_ops import _compressed_mlp

    if not ops_library_path().is_file():
        pytest.skip(f"{ops_library_path().name} is not built (`make native`)")
    x = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
    art = export_model(_compressed_mlp(), (x,), "executorch", tmp_path_factory.mktemp("ops") / "pte",
                       options={"kernels": "edgekit"}, parity_samples=8, show_progress=False)
    assert b"edgekit::lut_linear" in (art.path / "model.pte").read_bytes()
    return art.path


@needs_export
def test_edgekit_ops_pte(ops_artifact, native_lib, tmp_path):
    code = f"""
import os, numpy as np
from edgekit import runtime
from edgekit.artifact import load_artifact
path = {str(ops_artifact)!r}
ins, outs = load_artifact(path).reference_io()
x = np.full((1, 64), 0.5, np.float32)
os.environ["EDGEKIT_PTE_BACKEND"] = "python"      # loads libedgekit_executorch_ops.so through ctypes first
y_py = runtime.load(path).run([x])[0]
os.environ["EDGEKIT_PTE_BACKEND"] = "native"
s = runtime.load(path, threads=2)
from edgekit.kernels import _native as nk
pool = nk.lib().ek_default_threads()          # the C runtime sized the kernels' pool as the session
err = float(np.abs(s.run(ins)[0] - next(iter(outs.values()))).max())
y = s.run([x])[0]
print(type(s).__name__, pool, err, bool(np.array_equal(y, y_py)), repr(float(y.max())))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name, pool, err, same, top = proc.stdout.split()[-5:]
    assert name == "NativeSession" and pool == "2" and float(err) < 1e-5 and same == "True"

    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    (tmp_path / "classify.c").write_text(_example())
    build = native_lib.parent
    subprocess.run([cc, "-std=c11", str(tmp_path / "classify.c"), "-I", str(build.parent / "include"), "-L", str(build),
                    "-ledgekit_runtime", f"-Wl,-rpath,{build}", "-o", str(tmp_path / "classify")], check=True)
    run = subprocess.run([str(tmp_path / "classify"), str(ops_artifact)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    value = float(re.search(r"top class \d+ \(([-0-9.]+)\)", run.stdout).group(1))
    assert abs(value - float(top)) < 1e-4, (run.stdout, top)


@needs_export
def test_failed_op_check_reaches_the_c_runtime(ops_artifact, native_lib, tmp_path):
    """A failed edgekit:: op check (3-bit arrays of the former packed layout) comes out of edgekit_runtime
    with the op's own message and the re-export fix, not only ExecuTorch's bare error code."""
    import torch
    from executorch.exir import to_edge

    from edgekit.kernels import _native as nk
    from tests.kernels.test_executorch_ops import former_layout_module

    art = tmp_path / "art"
    shutil.copytree(ops_artifact, art)  # the manifest's signature (1 x 64 in) fits the replaced program
    module, x = former_layout_module(nk)
    (art / "model.pte").write_bytes(to_edge(torch.export.export(module, (x,))).to_executorch().buffer)
    code = f"""
import os, numpy as np
os.environ["EDGEKIT_PTE_BACKEND"] = "native"
os.environ["EDGEKIT_VERIFY_CHECKSUMS"] = "0"  # the program was replaced on purpose
from edgekit import runtime
from edgekit.errors import EdgekitError
s = runtime.load({str(art)!r})
print(type(s).__name__)
try:
    s.run([np.zeros((1, 64), np.float32)])
except EdgekitError as e:
    print(e.code)
    print(e.message)
    print(e.fix)
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name, code_, message, fix = proc.stdout.strip().splitlines()[-4:]
    assert name == "NativeSession" and code_ == "native_load", proc.stdout
    assert "re-export this .pte with this edgekit: packed data of 336 words, the 3-bit layout for 40 x 64 has 288" \
        in message, message
    assert "re-export" in fix
