"""Bad input: nothing bad gets stored, every refusal has a precise status and code."""

from __future__ import annotations

import io
import os
import pickle
import stat
import zipfile

import pytest

from .conftest import make_client, upload


def _zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _nothing_stored(client) -> None:
    state = client.app.state.edgekit
    assert state.db.query("SELECT id FROM artifacts") == []
    assert state.store.shas() == set()
    assert list(state.settings.tmp_dir.iterdir()) == [], "a rejected upload must leave no temp file"


def test_oversized_upload_streamed_is_413_and_leaves_nothing(tmp_path, zips):
    with make_client(tmp_path / "data", max_upload_bytes=4096) as c:
        # Chunked body (no Content-Length): the cap is enforced while streaming.
        def body():
            yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.onnx\"\r\n\r\n"
            for _ in range(20):
                yield os.urandom(1024)
            yield b"\r\n--b--\r\n"
        r = c.post("/v1/artifacts", content=body(), headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "upload_too_large"
        assert r.json()["error"]["details"]["max_upload_bytes"] == 4096
        _nothing_stored(c)


def test_oversized_upload_declared_is_413(tmp_path):
    with make_client(tmp_path / "data", max_upload_bytes=1024) as c:
        r = upload(c, os.urandom(200_000), filename="m.onnx")
        assert r.status_code == 413
        _nothing_stored(c)


@pytest.mark.parametrize("name, make", [
    ("onnx-named-tflite", lambda a: ("model.tflite", (a["onnx"] / "model.onnx").read_bytes())),
    ("tflite-named-pte", lambda a: ("model.pte", (a["tflite"] / "model.tflite").read_bytes())),
    ("zip-named-onnx", lambda a: ("model.onnx", _zip({"a.txt": b"x"}))),
])
def test_mislabeled_format_is_415(client, artifacts, name, make):
    filename, data = make(artifacts)
    r = upload(client, data, filename=filename)
    assert r.status_code == 415, r.text
    err = r.json()["error"]
    assert err["code"] == "format_mismatch" and err["details"]["sniffed"]
    _nothing_stored(client)


def test_claimed_format_field_is_checked(client, artifacts):
    r = upload(client, (artifacts["onnx"] / "model.onnx").read_bytes(), filename="blob", format="tflite")
    assert r.status_code == 415 and r.json()["error"]["details"]["claimed"] == "tflite"


@pytest.mark.parametrize("data", [os.urandom(4096), b"\x08\x07" + os.urandom(100), b"hello world"],
                         ids=["random", "onnx-looking", "text"])
def test_unknown_bytes_are_415(client, data):
    r = upload(client, data, filename="blob.bin")
    assert r.status_code == 415 and r.json()["error"]["code"] == "unknown_format"
    _nothing_stored(client)


def test_empty_upload_is_422(client):
    r = upload(client, b"", filename="m.onnx")
    assert r.status_code == 422 and r.json()["error"]["code"] == "artifact_empty"
    _nothing_stored(client)


@pytest.mark.parametrize("target, name", [("tflite", "model.tflite"), ("onnx", "model.onnx")])
def test_truncated_model_is_refused(client, artifacts, target, name):
    data = (artifacts[target] / name).read_bytes()
    r = upload(client, data[: len(data) // 2], filename=name)
    assert r.status_code in (415, 422), r.text  # truncated ONNX no longer parses as protobuf: 415
    assert r.json()["error"]["code"] in ("artifact_invalid", "unknown_format")
    _nothing_stored(client)


def test_no_multipart_is_415(client):
    r = client.post("/v1/artifacts", content=b"abc", headers={"content-type": "application/octet-stream"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "multipart_required"


@pytest.mark.parametrize("entries, symlink, code", [
    ({"../evil.txt": b"x", "manifest.json": b"{}"}, None, "archive_invalid"),
    ({"/abs/evil.txt": b"x"}, None, "archive_invalid"),
    ({"ok/manifest.json": b"{}"}, "link", "archive_invalid"),
    ({"manifest.json": b"{}", "weights.pkl": pickle.dumps({"a": 1})}, None, "pickle_refused"),
    ({"readme.txt": b"x"}, None, "archive_unrecognised"),
    ({"manifest.json": b"not json"}, None, "manifest_invalid"),
], ids=["zip-slip", "absolute", "symlink", "pickle-inside", "unrecognised", "bad-manifest"])
def test_bad_archives_are_422(client, entries, symlink, code):
    r = upload(client, _zip(entries, symlink), filename="art.zip")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    _nothing_stored(client)
    assert not (client.app.state.edgekit.settings.data_dir.parent / "evil.txt").exists()


def test_zip_bomb_stops_at_the_byte_cap(tmp_path):
    bomb = _zip({"manifest.json": b"{}", "model.onnx": b"\0" * (20 * 1024 * 1024)})
    assert len(bomb) < 100_000
    with make_client(tmp_path / "data", max_archive_bytes=1024 * 1024) as c:
        r = upload(c, bomb, filename="art.zip")
        assert r.status_code == 422
        assert "expands past" in r.json()["error"]["message"]
        _nothing_stored(c)


def test_pickle_payload_refused(client):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch /tmp/edgekit-pwned",))
    r = upload(client, pickle.dumps(Boom(), protocol=4), filename="model.pt")
    assert r.status_code == 415 and r.json()["error"]["code"] == "pickle_refused"
    assert not os.path.exists("/tmp/edgekit-pwned")
    _nothing_stored(client)


def test_malformed_job_json(client, zips):
    r = client.post("/v1/benchmarks", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    art = upload(client, zips["onnx"]).json()
    r = client.post("/v1/benchmarks", json={"artifact_id": art["id"], "runs": -3})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["errors"][0]["field"] == "body.runs"
    assert "body.runs" in r.json()["error"]["message"]
    r = client.post("/v1/benchmarks", json={"artifact_id": art["id"], "turbo": True})
    assert r.status_code == 422 and "body.turbo" in r.json()["error"]["message"]
    r = client.post("/v1/benchmarks", json={"runs": 5})
    assert r.status_code == 422 and "body.artifact_id" in r.json()["error"]["message"]
    r = client.post("/v1/benchmarks", json={"artifact_id": "art_nope"})
    assert r.status_code == 404
    r = client.post("/v1/benchmarks", json={"artifact_id": art["id"], "timeout_s": 10_000})
    assert r.status_code == 422 and r.json()["error"]["details"]["max"] == 600
    r = client.post("/v1/benchmarks", json={"artifact_id": art["id"], "runtime": "tensorrt"})
    assert r.status_code == 422 and r.json()["error"]["details"]["choices"] == ["onnxruntime"]


def test_inputs_not_matching_the_model_list_expected_and_given(client, zips):
    art = upload(client, zips["onnx"]).json()
    spec = [{"name": "input", "shape": [1, 9], "dtype": "float32"}]
    r = client.post("/v1/benchmarks", json={"artifact_id": art["id"], "inputs": spec})
    assert r.status_code == 422
    d = r.json()["error"]["details"]
    assert d["expected"] == [{"name": "input", "shape": [1, 8], "dtype": "float32"}]
    assert d["given"] == spec
    r = client.post("/v1/benchmarks", json={"artifact_id": art["id"], "inputs": [{"shape": [1, 8],
                                                                                  "dtype": "complex64"}]})
    assert r.status_code == 422 and "body.inputs" in r.json()["error"]["message"]


def test_reference_inputs_need_an_artifact_dir(client, artifacts):
    art = upload(client, (artifacts["onnx"] / "model.onnx").read_bytes(), filename="m.onnx").json()
    r = client.post("/v1/benchmarks", json={"artifact_id": art["id"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_reference_inputs"


def test_queue_full_is_429_with_retry_after(tmp_path, zips):
    with make_client(tmp_path / "data", max_queue=0) as c:
        art = upload(c, zips["onnx"]).json()
        r = c.post("/v1/benchmarks", json={"artifact_id": art["id"]})
        assert r.status_code == 429 and r.headers["retry-after"] == "10"
        assert r.json()["error"]["details"]["max_queue"] == 0


def test_storage_full_is_507(tmp_path, zips):
    with make_client(tmp_path / "data", min_free_bytes=1 << 62) as c:
        r = upload(c, zips["onnx"])
        assert r.status_code == 507 and r.json()["error"]["code"] == "storage_full"
        _nothing_stored(c)


def test_draining_server_refuses_new_jobs_with_503(client, zips):
    art = upload(client, zips["onnx"]).json()
    client.app.state.edgekit.draining = True
    r = client.post("/v1/benchmarks", json={"artifact_id": art["id"]})
    assert r.status_code == 503 and r.headers["retry-after"] == "30"
    assert client.get("/v1/health").json()["status"] == "draining"
    client.app.state.edgekit.draining = False


@pytest.mark.parametrize("filename", ["model.onnx", "model.tflite", "model.pte", "art.zip", "model.mlpackage.zip"])
@pytest.mark.parametrize("kind", ["empty", "random"])
def test_empty_and_random_bytes_under_every_name(client, filename, kind):
    data = b"" if kind == "empty" else os.urandom(2048)
    r = upload(client, data, filename=filename)
    assert r.status_code == (422 if kind == "empty" else 415), r.text
    _nothing_stored(client)


@pytest.mark.parametrize("magic, filename", [
    pytest.param(b"\x1c\x00\x00\x00TFL3", "model.tflite", id="tflite"),
    # ~20 s on 2 cores: the ExecuTorch runtime imports torch in the validation child.
    pytest.param(b"\x3c\x00\x00\x00ET12", "model.pte", id="executorch", marks=pytest.mark.slow),
])
def test_right_magic_with_garbage_is_422_from_the_sandboxed_loader(client, magic, filename):
    # The loader may raise or crash on these; either way only the validation child suffers.
    data = magic + os.urandom(4096)
    r = upload(client, data, filename=filename)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "artifact_invalid"
    _nothing_stored(client)
    assert client.get("/v1/health").status_code == 200


def test_disk_full_during_upload_is_507(client, monkeypatch, zips):
    import errno

    from edgekit.server import upload as upload_mod

    def full(self, data, start, end):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(upload_mod._PartState, "_data", full)
    r = upload(client, zips["onnx"])
    assert r.status_code == 507 and r.json()["error"]["code"] == "storage_full"
    _nothing_stored(client)
