"""SQLite in WAL mode: the one durable record of artifacts and jobs (R5).

One connection guarded by a lock: the API handlers and the worker thread share
it, and SQLite serialises writers anyway. ``synchronous=FULL`` so a finished
result survives power loss, not only a killed process.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    format TEXT NOT NULL,
    layout TEXT NOT NULL,            -- file | dir
    filename TEXT,                   -- the client's name: metadata only, never a path
    bytes INTEGER NOT NULL,
    tree_sha256 TEXT NOT NULL,       -- hash of what is in the store, checked before each job
    model_path TEXT NOT NULL,        -- relative to the artifact's store directory
    signature TEXT,                  -- {"inputs": [...], "outputs": [...]} or null
    has_reference INTEGER NOT NULL,
    validation TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- FIFO order
    id TEXT NOT NULL UNIQUE,
    artifact_id TEXT NOT NULL,
    artifact_sha256 TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    phase TEXT,
    reason TEXT,
    error TEXT,
    result TEXT,
    pgid INTEGER,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, seq);
"""

TERMINAL = ("succeeded", "failed", "timed_out", "canceled")
STATUSES = ("queued", "running", *TERMINAL)
_JSON_COLUMNS = ("signature", "validation", "config", "error", "result")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


class Database:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | list = ()) -> list[dict]:
        with self._lock:
            return [_decode(r) for r in self._conn.execute(sql, params).fetchall()]

    def one(self, sql: str, params: tuple | list = ()) -> dict | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def page(self, table: str, filters: dict, order: str, limit: int, offset: int) -> tuple[list[dict], int]:
        """Rows of ``table`` matching ``filters`` (column -> value; None = any), one page, and the total.

        ``table``, the filter columns and ``order`` come from code, never from a request."""
        where = [f"{col} = ?" for col, value in filters.items() if value is not None]
        params = [value for value in filters.values() if value is not None]
        sql = f"FROM {table}" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self.query(f"SELECT * {sql} ORDER BY {order} LIMIT ? OFFSET ?", [*params, limit, offset])
        return rows, self.one(f"SELECT COUNT(*) AS n {sql}", params)["n"]

    def execute(self, sql: str, params: tuple | list = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, params).rowcount

    def integrity_ok(self) -> bool:
        return self.one("PRAGMA integrity_check")["integrity_check"] == "ok"

    # -- artifacts ---------------------------------------------------------------------------
    def insert_artifact(self, row: dict) -> None:
        row = dict(row, created_at=time.time())
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.execute(f"INSERT INTO artifacts ({cols}) VALUES ({marks})", [_encode(v) for v in row.values()])

    def artifact(self, artifact_id: str) -> dict | None:
        return self.one("SELECT * FROM artifacts WHERE id = ?", (artifact_id,))

    def artifact_by_sha(self, sha256: str) -> dict | None:
        return self.one("SELECT * FROM artifacts WHERE sha256 = ?", (sha256,))

    # -- jobs --------------------------------------------------------------------------------
    def insert_job(self, artifact: dict, config: dict, max_attempts: int) -> dict:
        job_id = new_id("job")
        self.execute(
            "INSERT INTO jobs (id, artifact_id, artifact_sha256, config, status, max_attempts, created_at) "
            "VALUES (?, ?, ?, ?, 'queued', ?, ?)",
            (job_id, artifact["id"], artifact["sha256"], json.dumps(config), max_attempts, time.time()),
        )
        return self.job(job_id)

    def job(self, job_id: str) -> dict | None:
        return self.one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    def count_jobs(self, status: str) -> int:
        return self.one("SELECT COUNT(*) AS n FROM jobs WHERE status = ?", (status,))["n"]

    def claim_next(self) -> dict | None:
        """Mark the oldest queued job running and count the attempt, atomically."""
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?, phase = 'starting', "
                "pgid = NULL WHERE id = ?",
                (time.time(), row["id"]),
            )
        return self.job(row["id"])

    def update_job(self, job_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.execute(f"UPDATE jobs SET {sets} WHERE id = ?", [*(_encode(v) for v in fields.values()), job_id])

    def finish_job(self, job_id: str, status: str, *, reason: str | None = None, error: dict | None = None,
                   result: dict | None = None, phase: str | None = None) -> None:
        extra = {} if phase is None else {"phase": phase}
        self.update_job(job_id, status=status, reason=reason, error=error, result=result, pgid=None,
                        finished_at=time.time(), **extra)


def _encode(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, (dict, list)) else v


def _decode(row: sqlite3.Row) -> dict:
    d = dict(row)
    for k in _JSON_COLUMNS:
        if d.get(k) is not None:
            d[k] = json.loads(d[k])
    return d
