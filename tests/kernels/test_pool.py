"""The kernels' thread pool: parts claimed from a shared ticket by the caller and spinning workers.

Every product must give the bits of the 1-thread product however the parts are spread: thread counts
that change from call to call, more threads than cores, workers asleep (spin 0) or spinning, and two
callers at once (ctypes releases the GIL, so two Python threads really call the library together)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture()
def packed(nk):
    rng = np.random.default_rng(7)
    idx = rng.integers(0, 8, (300, 200), dtype=np.uint8)  # 19 blocks of 16 rows, the last one short
    w = nk.pack_lut(idx, np.sort(rng.standard_normal((1, 8))).astype(np.float32), 3)
    x = rng.standard_normal((1, 200)).astype(np.float32)
    xs = rng.standard_normal((5, 200)).astype(np.float32)
    yield w, x, xs
    nk.set_pool_spin_us(200)


@pytest.mark.parametrize("spin_us", [0, 200])
def test_changing_thread_counts_give_the_one_thread_bits(nk, packed, spin_us):
    w, x, xs = packed
    nk.set_pool_spin_us(spin_us)
    ref = {act: nk.linear(w, x, threads=1, activations=act) for act in ("fp32", "q8")}
    ref_m = nk.linear(w, xs, threads=1)
    for i in range(300):
        threads = 1 + i % 6  # up to 3x the cores here: parts outnumber the cores
        act = ("fp32", "q8")[i % 2]
        assert np.array_equal(nk.linear(w, x, threads=threads, activations=act), ref[act]), (i, threads, act)
    for threads in (2, 5, 19, 40):  # 40: more parts than blocks (capped at the 19 blocks)
        assert np.array_equal(nk.linear(w, xs, threads=threads), ref_m), threads


def test_two_callers_at_once_each_get_their_bits(nk, packed):
    w, x, xs = packed
    ref, ref_m = nk.linear(w, x, threads=1, activations="q8"), nk.linear(w, xs, threads=1)
    bad: list[str] = []

    def call(n: int, m: bool) -> None:
        for i in range(n):
            y = nk.linear(w, xs, threads=2) if m else nk.linear(w, x, threads=3, activations="q8")
            if not np.array_equal(y, ref_m if m else ref):
                bad.append(f"{'gemm' if m else 'gemv'} call {i}")

    callers = [threading.Thread(target=call, args=(200, m)) for m in (False, True)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in callers), "a caller hung in the pool"
    assert bad == []


def test_pool_under_thread_sanitizer(tmp_path):
    """pool.c alone, 3 C callers x 20000 jobs: each part runs once, and ThreadSanitizer finds no race
    (it found the one a claim could have against the next job's part count, since fixed)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    here, src = Path(__file__).parent, Path(__file__).parents[2] / "kernels" / "src"
    exe = tmp_path / "pool_check"

    def build_and_run(flags: list[str]):
        done = subprocess.run([cc, "-std=gnu11", "-O1", "-g", *flags, "-I", str(src), str(here / "pool_check.c"),
                               str(src / "pool.c"), "-lpthread", "-o", str(exe)], capture_output=True, text=True, check=False)
        return done if done.returncode else subprocess.run([str(exe)], capture_output=True, text=True, timeout=300, check=False)

    run = build_and_run(["-fsanitize=thread"])
    if run.returncode and "ThreadSanitizer: data race" not in run.stderr and "FAIL" not in run.stdout:
        run = build_and_run([])  # no libtsan here, or it cannot start: the exactly-once check alone
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), (run.stdout[-2000:], run.stderr[-4000:])
    assert "ThreadSanitizer" not in run.stderr, run.stderr[-4000:]


def test_spin_time_from_the_environment(nk):
    """EDGEKIT_POOL_SPIN_US sets the spin time when the first worker starts; garbage is reported and
    ignored (the default stays), in a fresh process each."""
    code = ("import numpy as np; from edgekit.kernels import _native as nk; "
            "w = nk.pack_lut(np.zeros((64, 32), np.uint8), np.ones((1, 16), np.float32), 4); "
            "nk.linear(w, np.ones(32, np.float32), threads=2); print(nk.pool_spin_us())")

    def spin(value: str):
        env = dict(os.environ, EDGEKIT_POOL_SPIN_US=value)
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)

    assert spin("0").stdout.strip() == "0" and spin("35").stdout.strip() == "35"
    bad = spin("fast")
    assert bad.stdout.strip() == "200" and "EDGEKIT_POOL_SPIN_US=fast is not a number" in bad.stderr
