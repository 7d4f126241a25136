"""edgekit.client and `edgekit bench --server` against real server processes."""

from __future__ import annotations

import pytest

from edgekit.cli import main
from edgekit.client import Client, ServerError, packed, sha256_file

from .conftest import ServerProcess


@pytest.fixture
def two_servers(tmp_path):
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        servers.append(ServerProcess(tmp_path / name, token="tok").start())
    yield servers
    for s in servers:
        s.stop()


def test_upload_skips_bytes_the_server_holds(two_servers, artifacts):
    c = Client(two_servers[0].url, token="tok")
    art, sent = c.upload(artifacts["onnx"])
    assert sent and art["format"] == "onnx" and art["has_reference_inputs"]
    again, sent = c.upload(artifacts["onnx"])
    assert not sent and again["id"] == art["id"]
    with packed(artifacts["onnx"]) as (f, _):
        assert sha256_file(f) == art["sha256"]  # deterministic zip: same tree, same hash
    with pytest.raises(ServerError) as e:
        Client(two_servers[0].url, token="wrong").device()
    assert e.value.status == 401 and e.value.code == "unauthorized"


def test_bench_fans_out_to_several_servers(two_servers, artifacts, capsys):
    urls = [s.url for s in two_servers]
    rc = main(["bench", "--server", urls[0], "--server", urls[1], "--token", "tok", "--runs", "10",
               "--min-seconds", "0", str(artifacts["onnx"])])
    assert rc == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("http://")]
    assert [line.split()[0] for line in lines] == urls
    assert all("onnx" in line for line in lines)
    assert "p50 ms" in out


def test_unreachable_server_is_a_clear_error(artifacts, capsys):
    rc = main(["bench", "--server", "http://127.0.0.1:9", str(artifacts["onnx"])])
    assert rc == 2
    assert "server_unreachable" in capsys.readouterr().err


def test_serve_refuses_a_public_host_without_token(capsys):
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "token_required" in err and "--token" in err
