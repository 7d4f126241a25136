"""A corpus of >= 200 corrupted artifacts: the C API answers each with a status, the host process survives.

The corpus runs in a child process (child.py), so a crash or abort fails the test and names the case.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.conftest import needs_export
import pytest

from tests.native_runtime.corpus import build, sweep

CHILD = Path(__file__).with_name("child.py")


def _run_corpus(cases, native_lib, tmp_path, timeout: int = 240) -> dict[str, dict]:
    """Each case's result line from one child process; fails naming the case if the child died."""
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps([{"name": c.name, "path": str(c.path), "verify": c.verify} for c in cases]))
    proc = subprocess.run([sys.executable, str(CHILD), str(spec)], capture_output=True, text=True, errors="replace",
                          timeout=timeout, env={**__import__("os").environ, "EDGEKIT_RUNTIME_LIB": str(native_lib)})
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    started = [d["start"] for d in lines if "start" in d]
    assert proc.returncode == 0, f"the host process died (rc {proc.returncode}) on case {started[-1:]}: " \
                                 f"{proc.stderr[-2000:]}"
    results = {d["name"]: d for d in lines if "open" in d}
    assert set(results) == {c.name for c in cases}
    return results


@needs_export
def test_corrupted_artifacts_give_statuses(tiny_artifacts, native_lib, tmp_path):
    cases = build(tiny_artifacts, tmp_path / "corpus")
    assert len(cases) >= 200
    results = _run_corpus(cases, native_lib, tmp_path)
    wrong = [(c.name, results[c.name]["open"], c.expect) for c in cases
             if c.expect and results[c.name]["open"] not in c.expect]
    assert not wrong, wrong
    # Every status is a known one, and with verification off the backends' own parsing rejected files
    # (not only the sha256 check).
    opened = Counter(r["open"] for r in results.values())
    assert set(opened) <= {"EK_OK", "EK_ERR_LOAD", "EK_ERR_CHECKSUM", "EK_ERR_MANIFEST", "EK_ERR_VERSION",
                           "EK_ERR_IO", "EK_ERR_BACKEND_UNAVAILABLE"}, opened
    by_backend = Counter(c.name[:3] for c in cases if not c.verify and results[c.name]["open"] == "EK_ERR_LOAD")
    assert by_backend["exe"] >= 30 and by_backend["tfl"] >= 70, by_backend
    assert sum(r.get("run") in ("EK_OK", "EK_ERR_RUN") for r in results.values()) >= 40  # mutated weights still run


@pytest.mark.slow
@needs_export
@pytest.mark.parametrize("seed", range(1, 9))
def test_random_mutation_sweep(tiny_artifacts, native_lib, tmp_path, seed):
    """8 x 800 more random mutations (verification off): every one is a status, none ends the process."""
    results = _run_corpus(sweep(tiny_artifacts, tmp_path / "sweep", seed, 400), native_lib, tmp_path, timeout=900)
    assert sum(r["open"] == "EK_ERR_LOAD" for r in results.values()) >= 100
