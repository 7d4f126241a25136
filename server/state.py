"""Everything a request handler needs, built once per app."""

from __future__ import annotations

import json
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.server import sandbox
from edgekit.server.db import Database
from edgekit.server.ingest import child_env, child_limits
from edgekit.server.metrics import Metrics
from edgekit.server.settings import Settings
from edgekit.server.store import Store
from edgekit.server.worker import Worker
from edgekit.targets import TARGET_NAMES


@dataclass
class AppState:
    settings: Settings
    db: Database
    store: Store
    metrics: Metrics
    worker: Worker
    draining: bool = False
    _runtimes: dict | None = field(default=None, repr=False)
    _probe_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> AppState:
        db = Database(settings.db_path)
        store = Store(settings.store_dir, settings.tmp_dir)
        store.sweep({r["sha256"] for r in db.query("SELECT sha256 FROM artifacts")})
        metrics = Metrics()
        return cls(settings, db, store, metrics, Worker(settings, db, store, metrics))

    def runtimes(self) -> dict:
        """Runtime availability, probed once in a child: probing imports native libraries."""
        with self._probe_lock:
            if self._runtimes is None:
                with tempfile.TemporaryDirectory(dir=self.settings.tmp_dir) as tmp:
                    out = Path(tmp) / "probe.json"
                    res = sandbox.run([sys.executable, "-m", "edgekit.server.validate_child", "--probe", str(out)],
                                      env=child_env(1), limits=child_limits(self.settings), timeout_s=120,
                                      stderr_bytes=self.settings.stderr_bytes)
                    if out.exists():
                        self._runtimes = json.loads(out.read_text())
                    else:
                        reason = f"probe failed: {res.signal_name or res.exit_code} {res.stderr[-300:]}"
                        return {k: {"available": False, "version": None, "reason": reason}
                                for k in TARGET_NAMES}
            return self._runtimes
