"""The dashboard: HTML tables, an SVG CDF per job, two jobs compared, everything escaped."""

from __future__ import annotations

from .conftest import make_client, upload, wait_job


def test_dashboard_pages(client, zips):
    art = upload(client, zips["onnx"]).json()
    body = {"artifact_id": art["id"], "runs": 50, "warmup": 0, "min_seconds": 0, "warmup_seconds": 0}
    a = wait_job(client, client.post("/v1/benchmarks", json=body).json()["id"])
    b = wait_job(client, client.post("/v1/benchmarks", json={**body, "inputs": "random"}).json()["id"])
    home = client.get("/dashboard")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    assert art["id"] in home.text and a["id"] in home.text and "<script" not in home.text
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
        r = c.get("/dashboard", params={"token": "tok"})
        assert r.status_code == 200 and "httponly" in r.headers["set-cookie"].lower()
        assert c.get("/dashboard").status_code == 200  # the cookie now carries the token
        assert c.get("/v1/artifacts").status_code == 401  # the cookie opens the dashboard only
