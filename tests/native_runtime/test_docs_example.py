"""docs/embedding.md's C example compiles against the header and runs a .pte and a .tflite."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import needs_export

ROOT = Path(__file__).resolve().parents[2]


def _example() -> str:
    text = (ROOT / "docs" / "embedding.md").read_text()
    section = text.split("## C API", 1)[1]
    return re.search(r"```c\n(.*?)```", section, re.S).group(1)


@needs_export
def test_c_example_compiles_and_runs(tiny_artifacts, native_lib, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    src = tmp_path / "classify.c"
    src.write_text(_example())
    exe = tmp_path / "classify"
    build = native_lib.parent
    proc = subprocess.run([cc, "-std=c11", "-O2", "-Wall", "-Werror", str(src),
                           "-I", str(ROOT / "native_runtime/include"), "-L", str(build), "-ledgekit_runtime",
                           f"-Wl,-rpath,{build}", "-o", str(exe)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for target in ("executorch", "tflite"):
        run = subprocess.run([str(exe), str(tiny_artifacts[target])], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        assert f"{target} artifact, 1 method(s)" in run.stdout
        assert re.search(r"output output_0: 10 values, top class \d", run.stdout), run.stdout
        assert "wrong shape -> EK_ERR_INPUT: input 'image' must have shape [1, 3, 32, 32], given [2, 3, 32, 32]" \
            in run.stdout, run.stdout
    bad = subprocess.run([str(exe), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.startswith("EK_ERR_MANIFEST:"), bad.stderr
