"""LLM artifacts as benchmark jobs: the isolated child runs generation rounds; fan-out; the dashboard's tokens/s."""

from __future__ import annotations

import pytest

from conftest import needs_export
from edgekit.cli import main

from .conftest import ServerProcess, upload, wait_job, zip_dir

pytestmark = needs_export


@pytest.fixture
def two_servers(tmp_path):
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        servers.append(ServerProcess(tmp_path / name).start())
    yield servers
    for s in servers:
        s.stop()


def test_llm_job_reports_tokens_per_s(client, tiny_llm_artifacts, zips):
    art = upload(client, zip_dir(tiny_llm_artifacts["onnx"]), "llm.zip").json()
    assert art["format"] == "onnx" and art["runnable"], art
    body = {"artifact_id": art["id"], "inputs": "random", "runs": 32, "warmup": 0, "min_seconds": 0,
            "prompt_tokens": 8, "new_tokens": 16}
    job = wait_job(client, client.post("/v1/benchmarks", json=body).json()["id"], timeout=120)
    assert job["status"] == "succeeded", job
    r = job["result"]
    assert r["kind"] == "llm" and r["llm"]["prompt_tokens"] == 8 and r["llm"]["rounds"] == 2
    assert r["latency"]["runs"] == 32 and len(r["samples_ms"]) == 32 and r["llm"]["decode_tokens_per_s"] > 0
    assert job["config"]["new_tokens"] == 16
    home = client.get("/dashboard").text
    assert "decode tok/s" in home and f"{r['llm']['decode_tokens_per_s']:.1f}" in home
    page = client.get(f"/dashboard/jobs/{job['id']}").text
    assert "time to first token" in page and "prefill tokens/s" in page
    # a classifier job's config and result keep their schema: no LLM fields
    cls = upload(client, zips["onnx"]).json()
    job = wait_job(client, client.post("/v1/benchmarks", json={"artifact_id": cls["id"], "runs": 5,
                                                               "min_seconds": 0}).json()["id"])
    assert job["status"] == "succeeded"
    assert "prompt_tokens" not in job["config"] and "llm" not in job["result"]


def test_bench_fans_an_llm_out_to_several_servers(two_servers, tiny_llm_artifacts, capsys):
    urls = [s.url for s in two_servers]
    rc = main(["bench", "--server", urls[0], "--server", urls[1], "--runs", "16", "--warmup", "0",
               "--min-seconds", "0", "--prompt-tokens", "8", "--new-tokens", "16", str(tiny_llm_artifacts["tflite"])])
    assert rc == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("http://")]
    assert [line.split()[0] for line in lines] == urls
    assert all("tflite" in line and "8+16" in line for line in lines)
    assert "decode tok/s" in out
