"""R5: SIGKILL the server with one job running and 20 queued; restart; nothing lost, FIFO holds."""

from __future__ import annotations

import sqlite3
import time

import psutil

from . import fault_child as fc
from .conftest import ServerProcess, wait_job


def test_sigkill_with_running_and_queued_jobs(tmp_path, zips):
    data = tmp_path / "data"
    data.mkdir()
    srv = ServerProcess(data).start()
    try:
        with srv.client() as c:
            art = c.post("/v1/artifacts", files={"file": ("onnx.zip", zips["onnx"])}).json()
            body = {"artifact_id": art["id"], "runs": 1, "warmup": 0, "min_seconds": 0, "warmup_seconds": 0}
            first = c.post("/v1/benchmarks", json={**body, "seed": fc.SLOW}).json()["id"]
            queued = [c.post("/v1/benchmarks", json={**body, "seed": fc.QUICK}).json()["id"] for _ in range(20)]
            deadline = time.monotonic() + 20
            while (job := c.get(f"/v1/benchmarks/{first}").json())["phase"] != "timed_runs":
                assert time.monotonic() < deadline, job
                time.sleep(0.05)
            pgid = sqlite3.connect(data / "edgekit.db").execute("SELECT pgid FROM jobs WHERE id = ?",
                                                                 (first,)).fetchone()[0]
            assert c.get("/v1/health").json()["queued"] == 20
        srv.kill()
        assert psutil.pid_exists(pgid), "the orphaned benchmark child outlives the killed server"

        srv = ServerProcess(data).start()
        assert not psutil.pid_exists(pgid) or psutil.Process(pgid).status() == psutil.STATUS_ZOMBIE
        with srv.client() as c:
            jobs = [wait_job(c, j, timeout=60) for j in [first, *queued]]
        assert [j["status"] for j in jobs] == ["succeeded"] * 21
        assert jobs[0]["attempts"] == 2 and all(j["attempts"] == 1 for j in jobs[1:])
        starts = [j["started_at"] for j in jobs]
        assert starts == sorted(starts), "FIFO: jobs start in submission order"
        ends = [j["finished_at"] for j in jobs]
        assert all(s >= e for s, e in zip(starts[1:], ends[:-1])), "exactly one job at a time"
        srv.stop()
        conn = sqlite3.connect(data / "edgekit.db")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 21
    finally:
        srv.kill()


def test_restart_fails_a_job_out_of_attempts_as_interrupted(tmp_path, zips):
    data = tmp_path / "data"
    data.mkdir()
    srv = ServerProcess(data, env={"EDGEKIT_SERVER_MAX_ATTEMPTS": "1"}).start()
    try:
        with srv.client() as c:
            art = c.post("/v1/artifacts", files={"file": ("onnx.zip", zips["onnx"])}).json()
            job_id = c.post("/v1/benchmarks", json={"artifact_id": art["id"], "seed": fc.HANG,
                                                    "timeout_s": 60}).json()["id"]
            while c.get(f"/v1/benchmarks/{job_id}").json()["phase"] != "warmup":
                time.sleep(0.05)
        srv.kill()
        srv = ServerProcess(data, env={"EDGEKIT_SERVER_MAX_ATTEMPTS": "1"}).start()
        with srv.client() as c:
            job = c.get(f"/v1/benchmarks/{job_id}").json()
            assert (job["status"], job["reason"], job["attempts"]) == ("failed", "interrupted", 1)
            assert c.get(f"/v1/artifacts/{art['id']}").status_code == 200
        srv.stop()
    finally:
        srv.kill()


def test_sigterm_requeues_the_running_job_and_exits(tmp_path, zips):
    data = tmp_path / "data"
    data.mkdir()
    srv = ServerProcess(data).start()
    try:
        with srv.client() as c:
            art = c.post("/v1/artifacts", files={"file": ("onnx.zip", zips["onnx"])}).json()
            job_id = c.post("/v1/benchmarks", json={"artifact_id": art["id"], "seed": fc.HANG,
                                                    "timeout_s": 60}).json()["id"]
            while c.get(f"/v1/benchmarks/{job_id}").json()["phase"] != "warmup":
                time.sleep(0.05)
        t0 = time.monotonic()
        srv.stop()  # SIGTERM
        # uvicorn re-raises the SIGTERM it handled after a clean shutdown, hence -15.
        assert srv.proc.returncode in (0, -15) and time.monotonic() - t0 < 10
        row = sqlite3.connect(data / "edgekit.db").execute(
            "SELECT status, attempts, pgid FROM jobs WHERE id = ?", (job_id,)).fetchone()
        assert row == ("queued", 1, None)
    finally:
        srv.kill()
