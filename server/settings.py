"""Server settings: flags override environment (EDGEKIT_SERVER_*), which overrides defaults.

    >>> Settings(data_dir="/tmp/ek").db_path                 # doctest: +SKIP
    PosixPath('/tmp/ek/edgekit.db')
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgekit.errors import EdgekitError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGEKIT_SERVER_", frozen=True)

    host: str = "127.0.0.1"
    port: int = 8765
    data_dir: Path = Path.home() / ".edgekit" / "server"
    # Bearer token checked on every route but /v1/health; required for a non-loopback host.
    token: str | None = None
    # Host-header allowlist against DNS rebinding; the bound host is always added.
    allowed_hosts: list[str] = Field(default_factory=lambda: list(LOOPBACK_NAMES))
    cors_origins: list[str] = Field(default_factory=list)  # no CORS unless configured
    max_upload_bytes: int = 512 * 1024 * 1024
    max_archive_entries: int = 1000
    max_archive_bytes: int = 2 * 1024 * 1024 * 1024  # bytes actually written when extracting
    min_free_bytes: int = 64 * 1024 * 1024  # 507 below this much free disk
    max_queue: int = 100  # queued jobs before 429
    max_attempts: int = 2  # a job interrupted by a restart runs at most this many times
    job_timeout_s: float = 600.0
    validate_timeout_s: float = 60.0
    # Child resource limits (R1). Address space is generous: runtimes map large virtual areas.
    isolate_cpus: bool = True  # pin benchmarks to their own cores, the API to the rest (Linux, >= 2 cores)
    child_mem_mb: int = 8192
    child_cpu_s: int = 1800
    child_fsize_mb: int = 64
    child_nofile: int = 256
    stderr_bytes: int = 16 * 1024
    # The module run as the benchmark child; tests swap in a fault-injecting one.
    bench_module: str = "edgekit.bench_child"

    def model_post_init(self, _context: object) -> None:
        if not is_loopback(self.host) and not self.token:
            raise EdgekitError(
                "token_required",
                f"host {self.host!r} is not loopback; serving it without a token would let anyone on the "
                "network run code on this machine",
                fix="pass --token SECRET (or set EDGEKIT_SERVER_TOKEN), or bind --host 127.0.0.1",
                details={"host": self.host},
            )
        if self.host not in self.allowed_hosts and self.host not in ("0.0.0.0", "::"):
            object.__setattr__(self, "allowed_hosts", [*self.allowed_hosts, self.host])

    @property
    def db_path(self) -> Path:
        return self.data_dir / "edgekit.db"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
