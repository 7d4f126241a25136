"""examples/cpp/edgekit_app, built by the project's own command (`make example-cpp`), on artifacts exported
in this test run: a classifier's .pte and .tflite match their stored reference outputs, an LLM .pte
generates Python's text (greedy and seeded sampling), and a bad artifact or reference is an exit status, not a crash."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_export

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "examples" / "cpp" / "_build" / "edgekit_app"

pytestmark = needs_export


@pytest.fixture(scope="module")
def app() -> Path:
    missing = [t for t in ("make", "cmake", "c++") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} to build the C++ example")
    r = subprocess.run(["make", "-s", "example-cpp", f"VENV={sys.prefix}"], cwd=REPO, capture_output=True, text=True,
                       timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    assert APP.is_file()
    return APP


def run_app(app: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(app), *map(str, args)], capture_output=True, text=True, timeout=300)


def cosines(stdout: str) -> dict[str, float]:
    pattern = r"^output (\S+): shape \[.*?\] cosine (\S+) max_abs_diff \S+"
    return {m[1]: float(m[2]) for m in re.finditer(pattern, stdout, re.M)}


def relist(artifact: Path, name: str) -> None:
    """Records a rewritten file's size and sha256 in the manifest, as the exporter would have."""
    manifest = json.loads((artifact / "manifest.json").read_text())
    data = (artifact / name).read_bytes()
    for f in manifest["files"]:
        if f["path"] == name:
            f["bytes"], f["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (artifact / "manifest.json").write_text(json.dumps(manifest, indent=1))


@pytest.mark.parametrize("target", ["executorch", "tflite"])
def test_app_matches_the_reference_outputs(app, tiny_artifacts, target):
    r = run_app(app, tiny_artifacts[target], "--runs", 5, "--min-cosine", 0.99999)
    assert r.returncode == 0, r.stdout + r.stderr
    cos = cosines(r.stdout)
    assert cos and all(c >= 0.99999 for c in cos.values()), r.stdout
    median = float(re.search(r"^latency: median (\S+) ms over 5 runs", r.stdout, re.M)[1])
    assert median > 0


def test_app_generates_the_python_text(app, tiny_llm_pte):
    from edgekit.generate import LLMSession

    prompt = "The for statement is used to iterate"
    session = LLMSession(tiny_llm_pte)
    greedy = session.generate(prompt, max_new_tokens=20, temperature=0).text
    r = run_app(app, tiny_llm_pte, "--prompt", prompt, "--max-new-tokens", 20, "--temperature", 0)
    assert r.returncode == 0, r.stderr
    assert r.stdout == prompt + greedy + "\n"
    sampled = session.generate(prompt, max_new_tokens=20, seed=5).text  # edgekit generate's defaults
    r = run_app(app, tiny_llm_pte, "--prompt", prompt, "--max-new-tokens", 20, "--seed", 5)
    assert r.stdout == prompt + sampled + "\n" and sampled != greedy
    assert re.search(r"\d+ prompt tokens, \d+ new tokens: time to first token [\d.]+ ms", r.stderr)


def test_app_reads_uncompressed_npz_and_fails_on_a_wrong_reference(app, tiny_artifacts, tmp_path):
    """np.savez (stored entries) reads like savez_compressed; a negated reference output gives cosine -1, exit 3."""
    art = tmp_path / "art"
    shutil.copytree(tiny_artifacts["tflite"], art)
    with np.load(art / "reference_io.npz") as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(art / "reference_io.npz", **arrays)
    relist(art, "reference_io.npz")
    r = run_app(app, art, "--runs", 1, "--min-cosine", 0.99999)
    assert r.returncode == 0 and cosines(r.stdout), r.stdout + r.stderr
    np.savez(art / "reference_io.npz", **{k: -v if k.startswith("out/") else v for k, v in arrays.items()})
    relist(art, "reference_io.npz")
    r = run_app(app, art, "--runs", 1, "--min-cosine", 0.99999)
    assert r.returncode == 3 and all(c < -0.9999 for c in cosines(r.stdout).values()), r.stdout


@pytest.mark.parametrize("damage", ["model", "npz"])
def test_app_reports_a_damaged_artifact(app, tiny_artifacts, tmp_path, damage):
    art = tmp_path / "art"
    shutil.copytree(tiny_artifacts["executorch"], art)
    if damage == "model":  # the C API's checksum check
        data = bytearray((art / "model.pte").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (art / "model.pte").write_bytes(bytes(data))
        want = "EK_ERR_CHECKSUM"
    else:  # a corrupt deflate stream with a consistent manifest: the app's own reader
        data = bytearray((art / "reference_io.npz").read_bytes())
        data[60:90] = bytes(30)
        (art / "reference_io.npz").write_bytes(bytes(data))
        relist(art, "reference_io.npz")
        want = "reference_io.npz"
    r = run_app(app, art, "--runs", 1)
    assert r.returncode == 1 and want in r.stderr, r.stderr
