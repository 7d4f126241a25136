"""Isolation (R1) against a real `edgekit serve` process: misbehaving runtimes fail one job each."""

from __future__ import annotations

import time

from . import fault_child as fc
from .conftest import processes_mentioning, wait_job


def _submit(c, art_id: str, seed: int, **kw) -> str:
    r = c.post("/v1/benchmarks", json={"artifact_id": art_id, "seed": seed, "runs": 5, "warmup": 0,
                                       "min_seconds": 0, "warmup_seconds": 0, **kw})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_crash_hang_and_stubborn_grandchild_each_fail_one_job(server, zips):
    server.start()
    with server.client() as c:
        art = c.post("/v1/artifacts", files={"file": ("onnx.zip", zips["onnx"])}).json()
        ids = {name: _submit(c, art["id"], seed, timeout_s=4) for name, seed in
               [("segv", fc.SEGFAULT), ("abort", fc.ABORT), ("hang", fc.HANG), ("grandchild", fc.GRANDCHILD),
                ("memory", fc.MEMORY)]}
        ids["good"] = _submit(c, art["id"], 0)
        # The API answers while the children misbehave.
        t0 = time.monotonic()
        assert c.get("/v1/health").status_code == 200
        assert time.monotonic() - t0 < 2
        jobs = {name: wait_job(c, job_id, timeout=60) for name, job_id in ids.items()}

    segv = jobs["segv"]
    assert (segv["status"], segv["reason"]) == ("failed", "runtime_crashed")
    assert segv["error"]["details"]["signal"] == "SIGSEGV" and segv["error"]["details"]["phase"] == "load"
    abort = jobs["abort"]
    assert (abort["reason"], abort["error"]["details"]["signal"]) == ("runtime_crashed", "SIGABRT")
    hang = jobs["hang"]
    assert (hang["status"], hang["reason"]) == ("timed_out", "timed_out")
    assert hang["error"]["details"]["phase"] == "warmup" and hang["error"]["details"]["timeout_s"] == 4
    gc = jobs["grandchild"]
    assert gc["status"] == "timed_out" and gc["error"]["details"]["phase"] == "timed_runs"
    assert jobs["memory"]["reason"] == "out_of_memory", jobs["memory"]["error"]
    good = jobs["good"]
    assert good["status"] == "succeeded", good["error"]
    assert good["result"]["latency"]["runs"] >= 5
    assert not processes_mentioning(fc.GRANDCHILD_MARK), "the grandchild ignoring SIGTERM must be killed too"


def test_cancel_a_running_job_kills_its_group(server, zips):
    server.start()
    with server.client() as c:
        art = c.post("/v1/artifacts", files={"file": ("onnx.zip", zips["onnx"])}).json()
        job_id = _submit(c, art["id"], fc.GRANDCHILD, timeout_s=60)
        deadline = time.monotonic() + 20
        while c.get(f"/v1/benchmarks/{job_id}").json()["phase"] != "timed_runs":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert c.post(f"/v1/benchmarks/{job_id}/cancel").status_code == 200
        job = wait_job(c, job_id, timeout=10)
        assert (job["status"], job["reason"]) == ("canceled", "canceled")
    assert not processes_mentioning(fc.GRANDCHILD_MARK)


def test_artifact_modified_in_store_fails_with_checksum_mismatch(server, zips):
    server.start()
    with server.client() as c:
        art = c.post("/v1/artifacts", files={"file": ("onnx.zip", zips["onnx"])}).json()
        model = next((server.data_dir / "store").rglob("model.onnx"))
        model.write_bytes(model.read_bytes()[:-1] + b"\0")
        job = wait_job(c, _submit(c, art["id"], 0))
        assert (job["status"], job["reason"]) == ("failed", "artifact_checksum_mismatch")
        assert job["error"]["details"]["expected"] != job["error"]["details"]["actual"]


def test_server_answers_health_while_a_job_runs(server, zips):
    server.start()
    with server.client() as c:
        art = c.post("/v1/artifacts", files={"file": ("onnx.zip", zips["onnx"])}).json()
        job_id = _submit(c, art["id"], fc.SLOW)
        lat = []
        for _ in range(30):
            t0 = time.monotonic()
            assert c.get(f"/v1/benchmarks/{job_id}").status_code == 200
            lat.append(time.monotonic() - t0)
        assert max(lat) < 1.0
        assert wait_job(c, job_id)["status"] == "succeeded"
