"""The native kernel library for these tests: built on demand (cmake, seconds) when missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def nk():
    from edgekit.kernels import _native

    if not _native.library_path().is_file():
        if not shutil.which("cmake"):
            pytest.skip("native kernels not built and cmake is absent: run `make native`")
        subprocess.run(["make", "-s", "-C", str(ROOT), "native"], check=True, capture_output=True)
        _native.lib.cache_clear()
    return _native
