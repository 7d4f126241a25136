"""The API through FastAPI's TestClient: artifacts, jobs, device, health, metrics, OpenAPI."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from .conftest import upload, wait_job


def test_upload_get_list_delete(client, zips):
    r = upload(client, zips["onnx"])
    assert r.status_code == 201, r.text
    art = r.json()
    assert art["format"] == "onnx" and art["has_reference_inputs"] and art["runnable"]
    assert art["sha256"] == hashlib.sha256(zips["onnx"]).hexdigest()
    assert art["signature"]["inputs"] == [{"name": "input", "shape": [1, 8], "dtype": "float32"}]
    assert r.headers["location"] == f"/v1/artifacts/{art['id']}"

    again = upload(client, zips["onnx"], filename="other-name.zip")
    assert again.status_code == 200 and again.json()["id"] == art["id"]  # content-addressed: stored once

    assert client.get(f"/v1/artifacts/{art['id']}").json()["sha256"] == art["sha256"]
    found = client.get("/v1/artifacts", params={"sha256": art["sha256"]}).json()
    assert found["count"] == 1 and found["items"][0]["id"] == art["id"]
    assert client.get("/v1/artifacts", params={"sha256": "0" * 64}).json()["count"] == 0
    assert client.get("/v1/artifacts", params={"sha256": "xyz"}).status_code == 422

    assert client.delete(f"/v1/artifacts/{art['id']}").status_code == 204
    gone = client.get(f"/v1/artifacts/{art['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "artifact_not_found"


def test_bare_tflite_file(client, artifacts):
    r = upload(client, (artifacts["tflite"] / "model.tflite").read_bytes(), filename="m.tflite")
    assert r.status_code == 201, r.text
    assert r.json()["format"] == "tflite" and r.json()["layout"] == "file"
    assert not r.json()["has_reference_inputs"]


def test_benchmark_job_succeeds_with_reference_inputs(client, zips):
    art = upload(client, zips["tflite"]).json()
    r = client.post("/v1/benchmarks", json={"artifact_id": art["id"], "runs": 20, "warmup": 2, "min_seconds": 0.1,
                                            "warmup_seconds": 0})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "queued" and r.json()["queue_position"] == 0
    job = wait_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 1 and job["reason"] is None
    res = job["result"]
    assert res["latency"]["runs"] >= 20 and res["runtime"] == "ai_edge_litert"
    assert res["sha256"] and res["server"]["peak_rss_mb_rusage"] > 0
    assert len(res["samples_ms"]) > 0
    assert res["artifact"] == art["id"] and "status_file" not in res["config"]

    listed = client.get("/v1/benchmarks", params={"status": "succeeded", "artifact_id": art["id"]}).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    assert client.get("/v1/benchmarks", params={"status": "failed"}).json()["count"] == 0
    bad = client.get("/v1/benchmarks", params={"status": "nope"})
    assert bad.status_code == 422 and "query.status" in bad.json()["error"]["message"]

    again = client.post(f"/v1/benchmarks/{job['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["details"]["status"] == "succeeded"


def test_explicit_input_spec_and_random(client, zips):
    art = upload(client, zips["onnx"]).json()
    spec = [{"name": "input", "shape": [1, 8], "dtype": "float32"}]
    common = {"artifact_id": art["id"], "runs": 5, "warmup": 0, "min_seconds": 0, "warmup_seconds": 0}
    j1 = client.post("/v1/benchmarks", json={**common, "inputs": spec}).json()
    j2 = client.post("/v1/benchmarks", json={**common, "inputs": "random"}).json()
    assert wait_job(client, j1["id"])["status"] == "succeeded"
    assert wait_job(client, j2["id"])["status"] == "succeeded"


def test_cancel_queued_job_and_delete_in_use(client, zips):
    art = upload(client, zips["onnx"]).json()
    body = {"artifact_id": art["id"], "runs": 5, "min_seconds": 0.5}
    first = client.post("/v1/benchmarks", json=body).json()
    second = client.post("/v1/benchmarks", json=body).json()
    assert second["queue_position"] in (0, 1)
    busy = client.delete(f"/v1/artifacts/{art['id']}")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "artifact_in_use"
    r = client.post(f"/v1/benchmarks/{second['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    assert wait_job(client, first["id"])["status"] == "succeeded"
    assert client.get(f"/v1/benchmarks/{second['id']}").json()["status"] == "canceled"
    assert client.post("/v1/benchmarks/job_nope/cancel").status_code == 404


def test_device_health_metrics(client):
    h = client.get("/v1/health").json()
    assert h["status"] == "ok" and h["worker_alive"]
    d = client.get("/v1/device").json()
    assert d["cpu_count"] >= 1 and d["memory_bytes"] > 0
    assert d["runtimes"]["onnx"]["available"] and d["runtimes"]["onnx"]["version"]
    for rt in d["runtimes"].values():
        assert rt["available"] or rt["reason"]
    m = client.get("/v1/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    assert "# TYPE edgekit_http_requests_total counter" in m.text
    assert 'edgekit_http_requests_total{method="GET",route="/v1/health",status="200"} 1' in m.text
    assert "edgekit_jobs_queued 0" in m.text


def test_openapi_documents_every_error_status(client):
    schema = client.get("/openapi.json").json()
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert {"401", "403", "500"} <= codes or path == "/v1/health", (path, method)
            for code, resp in op["responses"].items():
                if code.startswith(("4", "5")):
                    ref = resp["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorEnvelope"), (path, method, code)
    upload_codes = set(schema["paths"]["/v1/artifacts"]["post"]["responses"])
    assert {"201", "200", "400", "413", "415", "422", "507"} <= upload_codes
    assert {"429", "503", "404", "422"} <= set(schema["paths"]["/v1/benchmarks"]["post"]["responses"])


def test_importing_the_server_does_not_import_torch():
    code = ("import sys, edgekit.server.main, edgekit.client; "
            "bad = [m for m in ('torch', 'onnxruntime', 'ai_edge_litert', 'executorch') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
