"""Fixtures: tiny real artifacts (exported once per session), an in-process app, a real server process."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
BASE = "http://127.0.0.1:8765"


def zip_dir(d: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(d.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(d).as_posix())
    return buf.getvalue()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    """{"onnx": dir, "tflite": dir} exported from a tiny nn.Sequential."""
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("artifacts")
    # In a subprocess: torch and JAX start threads, and the server forks children from the test process.
    subprocess.run([sys.executable, "-c", _EXPORT, str(out)], check=True)
    return {t: out / t for t in ("onnx", "tflite")}


_EXPORT = """
import sys, numpy as np, torch, edgekit
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).eval()
x = np.random.default_rng(0).standard_normal((1, 8)).astype(np.float32)
for target in ("onnx", "tflite"):
    edgekit.export(model, (x,), target, f"{sys.argv[1]}/{target}", parity_samples=4, show_progress=False)
"""


@pytest.fixture(scope="session")
def zips(artifacts) -> dict[str, bytes]:
    return {t: zip_dir(p) for t, p in artifacts.items()}


def make_client(data_dir: Path, **settings):
    from edgekit.server.main import create_app
    from edgekit.server.settings import Settings
    from fastapi.testclient import TestClient

    app = create_app(Settings(data_dir=data_dir, **settings))
    return TestClient(app, base_url=BASE, raise_server_exceptions=False)


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path / "data") as c:
        yield c
        db = c.app.state.edgekit.db
        assert db.integrity_ok()
        rows = {r["sha256"] for r in db.query("SELECT sha256 FROM artifacts")}
        assert c.app.state.edgekit.store.shas() == rows, "the store must hold exactly the DB's artifacts"


def upload(client, data: bytes, filename: str = "onnx.zip", **form):
    return client.post("/v1/artifacts", files={"file": (filename, data)}, data=form)


def wait_job(client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/benchmarks/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`edgekit serve` in a subprocess on a free loopback port, with the fault-injecting bench child."""

    def __init__(self, data_dir: Path, *, env: dict | None = None, token: str | None = None):
        self.data_dir, self.token = data_dir, token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, EDGEKIT_SERVER_BENCH_MODULE="fault_child",
                        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
                        EDGEKIT_SERVER_JOB_TIMEOUT_S="60", **(env or {}))
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        cmd = [sys.executable, "-m", "edgekit.cli", "serve", "--port", str(self.port), "--data-dir",
               str(self.data_dir)]
        if self.token:
            cmd += ["--token", self.token]
        self.log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115 -- lives with the process
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not answer /v1/health in 30 s")

    def client(self):
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def _check_data_dir(data: Path) -> None:
    """After a test: the DB passes integrity_check and the store holds exactly the DB's artifacts."""
    import sqlite3

    if not (data / "edgekit.db").exists():
        return
    conn = sqlite3.connect(data / "edgekit.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = {r[0] for r in conn.execute("SELECT sha256 FROM artifacts")}
    finally:
        conn.close()
    on_disk = {p.name for p in (data / "store").glob("*/*") if p.is_dir()}
    assert on_disk == rows, "the store must hold exactly the DB's artifacts"


def processes_mentioning(text: str) -> list:
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(text in part for part in (p.info["cmdline"] or [])):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


@pytest.fixture
def server(tmp_path):
    srv = ServerProcess(tmp_path / "data")
    (tmp_path / "data").mkdir()
    yield srv
    if srv.proc and srv.proc.poll() is None:
        with srv.client() as c:
            assert c.get("/v1/health").status_code == 200, "the server must still answer after the test"
    srv.stop()
    _check_data_dir(tmp_path / "data")
    leftovers = processes_mentioning(str(tmp_path / "data"))
    for p in leftovers:
        p.kill()
    assert not leftovers, f"orphan processes: {[p.info['cmdline'] for p in leftovers]}"
    shutil.rmtree(tmp_path / "data", ignore_errors=True)
