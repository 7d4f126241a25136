"""Client for the edgekit benchmark server (standard library only: no torch, no httpx).

    >>> from edgekit.client import Client
    >>> c = Client("http://127.0.0.1:8765")                          # doctest: +SKIP
    >>> art, sent = c.upload("out/resnet18/onnx")                     # doctest: +SKIP
    >>> job = c.wait(c.submit(art["id"], runs=100)["id"])             # doctest: +SKIP
    >>> job["result"]["latency"]["p50_ms"]                            # doctest: +SKIP

Artifact directories are zipped deterministically (sorted entries, fixed
timestamps), so the same directory always has the same sha256 and a server that
already holds it is not sent the bytes again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from edgekit.errors import EdgekitError

TERMINAL = ("succeeded", "failed", "timed_out", "canceled")
_CHUNK = 1 << 20


class ServerError(EdgekitError):
    """An error envelope from the server, or a server that cannot be reached."""

    def __init__(self, url: str, status: int | None, code: str, message: str, details: dict | None = None):
        super().__init__(code, f"{url}: {message}" + (f" (HTTP {status})" if status else ""),
                         fix=(details or {}).get("fix"), details={"status": status, **(details or {})})
        self.status = status


class Client:
    def __init__(self, url: str, *, token: str | None = None, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # -- resources ---------------------------------------------------------------------------
    def health(self) -> dict:
        return self._json("GET", "/v1/health")

    def device(self) -> dict:
        return self._json("GET", "/v1/device")

    def find_artifact(self, sha256: str) -> dict | None:
        items = self._json("GET", "/v1/artifacts?" + urllib.parse.urlencode({"sha256": sha256}))["items"]
        return items[0] if items else None

    def upload(self, path: str | os.PathLike) -> tuple[dict, bool]:
        """Upload a model file or artifact directory unless the server holds it; (artifact, bytes were sent)."""
        with packed(Path(path)) as (file, name):
            existing = self.find_artifact(sha256_file(file))
            if existing:
                return existing, False
            return self._upload_file(file, name), True

    def submit(self, artifact_id: str, **config) -> dict:
        return self._json("POST", "/v1/benchmarks", {"artifact_id": artifact_id, **config})

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/v1/benchmarks/{job_id}")

    def cancel(self, job_id: str) -> dict:
        return self._json("POST", f"/v1/benchmarks/{job_id}/cancel")

    def wait(self, job_id: str, *, poll_s: float = 0.5, timeout_s: float = 3600,
             on_update: Callable[[dict], None] | None = None) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if on_update:
                on_update(job)
            if job["status"] in TERMINAL:
                return job
            if time.monotonic() > deadline:
                raise EdgekitError("client_timeout", f"job {job_id} on {self.url} still {job['status']} after "
                                   f"{timeout_s:.0f} s", fix="raise the timeout or cancel the job")
            time.sleep(poll_s)

    # -- HTTP --------------------------------------------------------------------------------
    def _upload_file(self, file: Path, name: str) -> dict:
        boundary = uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        length = len(head) + file.stat().st_size + len(tail)

        def body() -> Iterator[bytes]:
            yield head
            with open(file, "rb") as f:
                while chunk := f.read(_CHUNK):
                    yield chunk
            yield tail

        return self._json("POST", "/v1/artifacts", body(),
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                   "Content-Length": str(length)})

    def _json(self, method: str, path: str, body: object = None, headers: dict | None = None) -> dict:
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = body
        if isinstance(body, dict):
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                err = json.loads(raw)["error"]
            except (ValueError, KeyError, TypeError):
                err = {"code": f"http_{e.code}", "message": raw[:200].decode("utf-8", "replace")}
            raise ServerError(self.url, e.code, err["code"], err["message"], err.get("details")) from None
        except (urllib.error.URLError, OSError) as e:
            raise ServerError(self.url, None, "server_unreachable", f"cannot reach the server: {e}",
                              {"fix": "check the URL and that `edgekit serve` runs there"}) from None
        return json.loads(raw) if raw else {}


class packed:
    """Context manager: (file to upload, filename). A directory becomes a deterministic temp zip."""

    def __init__(self, path: Path):
        self.path = path
        self._tmp: Path | None = None

    def __enter__(self) -> tuple[Path, str]:
        if not self.path.exists():
            raise EdgekitError("not_found", f"{self.path} does not exist", fix="check the path")
        if self.path.is_file():
            return self.path, self.path.name
        fd, name = tempfile.mkstemp(suffix=".zip", prefix="edgekit-upload-")
        os.close(fd)
        self._tmp = Path(name)
        zip_dir(self.path, self._tmp)
        return self._tmp, self.path.name + ".zip"

    def __exit__(self, *exc) -> None:
        if self._tmp:
            self._tmp.unlink(missing_ok=True)


def zip_dir(src: Path, dest: Path) -> None:
    """Zip ``src`` with sorted entries and fixed timestamps: same tree, same bytes, same sha256."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(src.rglob("*")):
            if p.is_file() and not p.is_symlink():
                info = zipfile.ZipInfo(p.relative_to(src).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(p, "rb") as f:
                    z.writestr(info, f.read())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bench_remote(servers: list[str], artifacts: list[str], *, token: str | None = None, show_progress: bool = True,
                 **config) -> list[tuple[str, dict]]:
    """Benchmark every artifact on every server, servers in parallel; [(server, result)] in input order."""
    from concurrent.futures import ThreadPoolExecutor

    from edgekit.progress import progress

    total = len(servers) * len(artifacts)
    bar = progress(iter(()), desc="remote benchmark", total=total, enabled=show_progress)

    status: dict[str, str] = {}

    def show(url: str, job: dict) -> None:
        where = job["phase"] if job["status"] == "running" else job["status"]
        if job.get("queue_position"):
            where += f" #{job['queue_position']}"
        status[url] = where
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str("  ".join(f"{urllib.parse.urlsplit(u).netloc}: {s}" for u, s in status.items()))

    def one_server(url: str) -> list[tuple[str, dict]]:
        client = Client(url, token=token)
        out = []
        for path in artifacts:
            art, _ = client.upload(path)
            job_config = config | ({"inputs": "random"} if _is_llm(path) else {})  # LLMs carry no reference inputs
            job = client.wait(client.submit(art["id"], **job_config)["id"], on_update=lambda j: show(url, j))
            if hasattr(bar, "update"):
                bar.update(1)
            if job["status"] != "succeeded":
                err = job.get("error") or {}
                raise ServerError(url, None, job.get("reason") or job["status"],
                                  f"benchmark of {path} {job['status']}: {err.get('message')}", err.get("details"))
            out.append((url, job["result"]))
        return out

    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        per_server = list(pool.map(one_server, servers))
    if hasattr(bar, "close"):
        bar.close()
    # Side by side: each artifact's row from every server together.
    return [per_server[s][a] for a in range(len(artifacts)) for s in range(len(servers))]


def _is_llm(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an LLM artifact directory (benchmarked in generation rounds, see edgekit.llm_bench)."""
    manifest = Path(path) / "manifest.json"
    try:
        return Path(path).is_dir() and json.loads(manifest.read_text()).get("kind") == "edgekit-llm"
    except (OSError, ValueError):
        return False
