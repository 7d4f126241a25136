"""The dashboard: HTML tables, an SVG CDF per job, two jobs compared, everything escaped."""

from __future__ import annotations

from .conftest import make_client, upload, wait_job


def test_dashboard_pages(client, zips, artifacts):
    art = upload(client, zips["onnx"]).json()
    body = {"artifact_id": art["id"], "runs": 50, "warmup": 0, "min_seconds": 0, "warmup_seconds": 0}
    a = wait_job(client, client.post("/v1/benchmarks", json=body).json()["id"])
    b = wait_job(client, client.post("/v1/benchmarks", json={**body, "inputs": "random"}).json()["id"])
    home = client.get("/dashboard")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    assert art["id"] in home.text and a["id"] in home.text and "<script" not in home.text
    assert client.get("/").text == home.text  # `make demo` prints http://HOST:PORT/: the dashboard is there too
    page = client.get(f"/dashboard/jobs/{a['id']}").text
    assert "<svg" in page and page.count("class='cdf'") == 1 and "p50_ms" in page
    cmp = client.get("/dashboard/compare", params={"a": a["id"], "b": b["id"]}).text
    assert cmp.count("class='cdf'") == 2 and "b / a" in cmp
    assert client.get("/dashboard/jobs/job_nope").status_code == 404


def test_dashboard_escapes_client_filenames(client, zips):
    upload(client, zips["onnx"], filename="<img src=x onerror=alert(1)>.zip")
    text = client.get("/dashboard").text
    assert "<img" not in text and "&lt;img" in text


def test_dashboard_token_via_query_sets_cookie(tmp_path):
    with make_client(tmp_path / "data", token="tok") as c:
        assert c.get("/dashboard").status_code == 401
        assert c.get("/").status_code == 401
        r = c.get("/dashboard", params={"token": "tok"})
        assert r.status_code == 200 and "httponly" in r.headers["set-cookie"].lower()
        assert c.get("/dashboard").status_code == 200  # the cookie now carries the token
        assert c.get("/").status_code == 200
        assert c.get("/v1/artifacts").status_code == 401  # the cookie opens the dashboard only
    with make_client(tmp_path / "data2", token="tok") as c:
        r = c.get("/", params={"token": "tok"})
        assert r.status_code == 200 and "httponly" in r.headers["set-cookie"].lower()


def test_dashboard_names_artifacts_from_the_manifest_and_charts_p50(client, zips, artifacts):
    import json
    import re

    from edgekit.report import parity_cell

    manifest = json.loads((artifacts["onnx"] / "manifest.json").read_text())
    model_bytes = (artifacts["onnx"] / "model.onnx").stat().st_size
    onnx_art = upload(client, zips["onnx"]).json()
    tfl_art = upload(client, zips["tflite"], filename="tflite.zip").json()
    bare = upload(client, (artifacts["onnx"] / "model.onnx").read_bytes(), filename="bare.onnx").json()
    body = {"runs": 30, "warmup": 0, "min_seconds": 0, "warmup_seconds": 0}
    jobs = [wait_job(client, client.post("/v1/benchmarks", json={"artifact_id": x["id"], **body, **extra})
                     .json()["id"]) for x, extra in ((onnx_art, {}), (tfl_art, {}), (bare, {"inputs": "random"}))]
    assert all(j["status"] == "succeeded" for j in jobs)
    text = client.get("/").text
    row = next(r for r in text.split("<tr>") if onnx_art["id"] in r)
    cells = [c.split("</td>")[0] for c in row.split("<td>")[1:]]
    # id, model, target, recipe, precision, model bytes, parity, uploaded as
    assert cells[1] == f"{manifest['model']['name']} ({manifest['model']['class']})" == "model (Sequential)"
    assert cells[2] == "onnx" and cells[3] == "-" and cells[4] == manifest["precision"]
    assert cells[5] == f"{model_bytes:,}" and cells[7] == "onnx.zip"
    assert cells[6] == parity_cell(manifest["parity"]) and cells[6].startswith("ok cos ")
    assert "tflite" in next(r for r in text.split("<tr>") if tfl_art["id"] in r)
    bare_row = next(r for r in text.split("<tr>") if bare["id"] in r)
    assert "bare.onnx" in bare_row and f"{bare['bytes']:,}" in bare_row
    # the chart: one bar per artifact, fastest first, each with its p50 in ms
    chart = text.split("aria-label='p50 latency by artifact'>")[1].split("</svg>")[0]
    assert chart.count("class='p50'") == 3 and "(fastest)" in chart
    p50s = sorted(j["result"]["latency"]["p50_ms"] for j in jobs)
    shown = [float(v) for v in re.findall(r"<text[^>]*>([0-9.]+) ms", chart)]
    assert shown == [round(p, 3) for p in p50s]
    assert "model onnx · 1 thr" in chart and "model tflite · 1 thr" in chart


def test_p50_chart_compares_servers():
    from edgekit.server.dashboard import p50_svg

    svg = p50_svg([{"label": "resnet18 onnx", "server": "http://pi:8765", "p50_ms": 12.5},
                   {"label": "resnet18 onnx", "server": "http://laptop:8765", "p50_ms": 3.25},
                   {"label": "resnet18 tflite", "server": "http://pi:8765", "p50_ms": 9.0}])
    assert svg.count("class='p50'") == 3 and svg.index("3.250 ms (fastest)") < svg.index("9.000 ms")
    assert svg.count("#1f77b4") == 1 + 1 and "http://pi:8765" in svg and "http://laptop:8765" in svg
