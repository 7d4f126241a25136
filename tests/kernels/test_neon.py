"""The NEON path, cross-compiled for AArch64 with Debian's gcc and run under qemu-user: every
format and shape of isa_check.c equals the scalar reference bit for bit (correctness, not speed),
with fp32 and with int8 activations (the latter on a core with and one without the dot-product
extension)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
K = ROOT / "kernels"
SOURCES = ["src/dispatch.c", "src/matrix.c", "src/pool.c", "lut/pack.c", "lut/reference.c", "lut/neon.c",
           "lut/q8.c", "lut/neon_q8.c", "lut/neon_q8_dot.c", "sparse/neon_q8.c", "sparse/neon_q8_dot.c",
           "shift/pack.c", "sparse/pack.c", "sparse/reference.c", "sparse/q8.c", "sparse/neon.c", "probe/reference.c",
           "probe/neon.c", "attn/reference.c", "attn/neon.c"]
CC, QEMU = "aarch64-linux-gnu-gcc", "qemu-aarch64"


def test_neon_equals_reference_under_qemu(tmp_path):
    missing = [t for t in (CC, QEMU) if not shutil.which(t)]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: `make cross` installs them (Debian, root)")
    exe = tmp_path / "isa_check"
    build = subprocess.run([CC, "-std=gnu11", "-O1", "-ffp-contract=off", "-fno-math-errno", "-static",
                            "-DEK_HAVE_NEON", f"-I{K / 'include'}", "-o", str(exe),
                            str(Path(__file__).with_name("isa_check.c")), *[str(K / s) for s in SOURCES],
                            "-lpthread", "-lm"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    # a core with the dot-product extension (the q8 kernels use sdot) and one without (smull + adds)
    for cpu, flags in (("cortex-a76", "(neon, q8, dotprod)"), ("cortex-a53", "(neon, q8)")):
        run = subprocess.run([QEMU, "-cpu", cpu, str(exe), "neon"], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout.startswith("ok ") and flags in run.stdout, run.stdout
        # formats x bits x shapes x batch sizes: 3 fp32 formats + lut, shift and 2:4 with int8 activations
        assert int(run.stdout.split()[1]) == (3 + 3) * 3 * 10 * 4  # 10 shapes (isa_check.c)
        assert ", 5 attention " in run.stdout, run.stdout  # ek_attention: 5 shapes, the reference's bits
