"""The edgekit_runtime library, built once per session when `make native` has not built it."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pkg_dir(name: str) -> str:
    spec = importlib.util.find_spec(name)
    return str(Path(spec.origin).parent) if spec and spec.origin else ""


@pytest.fixture(scope="session")
def native_lib() -> Path:
    from edgekit.runtime import native

    path = native.library_path()
    if not path.is_file():
        if not shutil.which("cmake"):
            pytest.skip("cmake is not installed and native_runtime/_build is not built (`make native`)")
        build = ROOT / "native_runtime" / "_build"
        gen = ["-G", "Ninja"] if shutil.which("ninja") else []
        subprocess.run(["cmake", "-S", str(ROOT / "native_runtime"), "-B", str(build), *gen,
                        "-DCMAKE_BUILD_TYPE=Release", f"-DEK_EXECUTORCH_DIR={_pkg_dir('executorch')}",
                        f"-DEK_LITERT_DIR={_pkg_dir('ai_edge_litert')}"], check=True, capture_output=True)
        subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    assert path.is_file(), path
    return path


def run_python(code: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=str(ROOT))


@pytest.fixture(scope="session")
def llm_pte(tiny_llm_pte) -> Path:
    """A tiny 2-layer LLM .pte with the in-place KV cache (prefill / decode / reset): the suite's shared one."""
    return tiny_llm_pte
