"""R6: token on every route but health, Host allowlist, no CORS, loopback by default."""

from __future__ import annotations

import pytest
from edgekit.server.settings import Settings

from edgekit.errors import EdgekitError

from .conftest import make_client


@pytest.fixture
def guarded(tmp_path):
    with make_client(tmp_path / "data", token="s3cret") as c:
        yield c


@pytest.mark.parametrize("method, path", [("get", "/v1/artifacts"), ("get", "/v1/benchmarks"),
                                          ("get", "/v1/device"), ("get", "/v1/metrics"), ("get", "/openapi.json"),
                                          ("get", "/docs"), ("post", "/v1/benchmarks"), ("post", "/v1/artifacts"),
                                          ("delete", "/v1/artifacts/x"), ("get", "/dashboard")])
def test_every_route_but_health_needs_the_token(guarded, method, path):
    r = getattr(guarded, method)(path)
    assert r.status_code == 401, (path, r.status_code)
    assert r.json()["error"]["code"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
    r = getattr(guarded, method)(path, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_token_accepted_and_health_open(guarded):
    assert guarded.get("/v1/health").status_code == 200
    assert guarded.get("/v1/artifacts", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_foreign_host_header_is_403(client):
    for host in ("evil.example", "attacker.com:8765", "127.0.0.1.nip.io"):
        r = client.get("/v1/health", headers={"Host": host})
        assert r.status_code == 403, host
        assert r.json()["error"]["code"] == "host_not_allowed"
    assert client.get("/v1/health", headers={"Host": "localhost:8765"}).status_code == 200
    assert client.get("/v1/health", headers={"Host": "[::1]:8765"}).status_code == 200


def test_host_header_is_parsed_strictly(client):
    """The whole header must be one host and an optional port: a bracketed prefix does not make it [::1]."""
    for host in ("[::1]evil.example.com", "[::1].evil.example.com:80", "[::1]:80evil", "[::1]:8765:1",
                 "localhost:", "localhost:99999", "localhost:80:80", "127.0.0.1:8765@evil.example", "::1",
                 "[::1", "localhost evil", "[evil.example]"):
        r = client.get("/v1/health", headers={"Host": host})
        assert r.status_code == 403, host
    for host in ("[::1]", "[::1]:8765", "127.0.0.1:8765", "127.0.0.1", "localhost", "LOCALHOST:80"):
        assert client.get("/v1/health", headers={"Host": host}).status_code == 200, host
    from edgekit.server.security import parse_host

    assert parse_host("[::1]:8765") == "::1" and parse_host("[::1]evil.example.com") is None
    assert parse_host("Pi.Local:8765") == "pi.local"


def test_no_cors_headers(client):
    r = client.get("/v1/artifacts", headers={"Origin": "http://evil.example"})
    assert not any(h.lower().startswith("access-control-") for h in r.headers)
    r = client.options("/v1/artifacts", headers={"Origin": "http://evil.example",
                                                 "Access-Control-Request-Method": "POST"})
    assert r.status_code == 405
    assert not any(h.lower().startswith("access-control-") for h in r.headers)


def test_loopback_by_default_and_public_bind_needs_token(tmp_path):
    assert Settings(data_dir=tmp_path).host == "127.0.0.1"
    with pytest.raises(EdgekitError) as e:
        Settings(data_dir=tmp_path, host="0.0.0.0")
    assert e.value.code == "token_required" and "--token" in e.value.fix
    s = Settings(data_dir=tmp_path, host="192.168.1.5", token="t")
    assert "192.168.1.5" in s.allowed_hosts


def test_child_environment_carries_no_token(monkeypatch):
    from edgekit.server.ingest import child_env

    monkeypatch.setenv("EDGEKIT_SERVER_TOKEN", "s3cret")
    assert "s3cret" not in child_env(1).values()
