"""Load: 16 clients polling while a benchmark runs; every poll answers, the job still succeeds.

Marked slow (about 15 s); benchmarks/server_load.py measures the same thing with numbers.
"""

from __future__ import annotations

import threading
import time

import pytest

from .conftest import wait_job


@pytest.mark.slow
def test_sixteen_pollers_during_a_benchmark(server, zips):
    server.start()
    with server.client() as c:
        art = c.post("/v1/artifacts", files={"file": ("onnx.zip", zips["onnx"])}).json()
        job_id = c.post("/v1/benchmarks", json={"artifact_id": art["id"], "min_seconds": 3}).json()["id"]
        statuses, lat, stop = [], [], threading.Event()

        def poll() -> None:
            with server.client() as h:
                while not stop.is_set():
                    t0 = time.monotonic()
                    statuses.append(h.get(f"/v1/benchmarks/{job_id}").status_code)
                    lat.append(time.monotonic() - t0)

        threads = [threading.Thread(target=poll) for _ in range(16)]
        for t in threads:
            t.start()
        job = wait_job(c, job_id, timeout=60)
        stop.set()
        for t in threads:
            t.join()
    assert job["status"] == "succeeded"
    assert len(statuses) > 100 and set(statuses) == {200}
    assert sorted(lat)[int(0.99 * len(lat))] < 2.0
