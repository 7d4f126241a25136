"""The dashboard in headless Chromium against a real server: the page renders, the CDF SVG is in the DOM."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest

from .conftest import wait_job

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install -y --no-install-recommends chromium)")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=90)


def test_dashboard_renders_in_chromium(server, zips, tmp_path):
    server.token = "tok"
    server.start()
    with server.client() as c:
        art = c.post("/v1/artifacts", files={"file": ("onnx.zip", zips["onnx"])}).json()
        body = {"artifact_id": art["id"], "runs": 100, "warmup": 0, "min_seconds": 0, "warmup_seconds": 0}
        a = wait_job(c, c.post("/v1/benchmarks", json=body).json()["id"])
        b = wait_job(c, c.post("/v1/benchmarks", json={**body, "inputs": "random"}).json()["id"])
    assert a["status"] == b["status"] == "succeeded"

    dom = _chromium("--dump-dom", f"{server.url}/dashboard/compare?a={a['id']}&b={b['id']}&token=tok").stdout
    assert "<svg" in dom and dom.count('class="cdf"') == 2, dom[:500]
    assert a["id"] in dom and b["id"] in dom

    denied = _chromium("--dump-dom", f"{server.url}/dashboard").stdout
    assert "unauthorized" in denied

    shot = tmp_path / "job.png"
    _chromium(f"--screenshot={shot}", "--window-size=900,700", f"{server.url}/dashboard/jobs/{a['id']}?token=tok")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
