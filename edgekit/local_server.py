"""Start `edgekit serve` on a free loopback port for the length of a `with` block."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from edgekit.errors import EdgekitError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_server(data_dir: str | Path | None = None, *, start_timeout_s: float = 60) -> Iterator[str]:
    """Yield the URL of a fresh local benchmark server; stop it afterwards."""
    from edgekit.client import Client

    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="edgekit-server-"))
        port = _free_port()
        log = stack.enter_context(tempfile.TemporaryFile(mode="w+"))
        proc = subprocess.Popen([sys.executable, "-m", "edgekit.cli", "serve", "--port", str(port),
                                 "--data-dir", str(data_dir)], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout_s
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise EdgekitError("server_failed", f"edgekit serve exited with code {proc.returncode}",
                                       fix="see details.log; is the server extra installed? pip install '.[server]'",
                                       details={"log": log.read()[-3000:]})
                try:
                    Client(url, timeout=2).health()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise EdgekitError("server_failed", f"edgekit serve did not answer within "
                                           f"{start_timeout_s:.0f} s", fix="check the port and the log") from None
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
