"""The worker: one benchmark at a time, FIFO, each in a sandboxed child (R1, R5).

A thread in the server process claims the oldest queued job, checks the stored
artifact's hash, runs the benchmark child and turns how it ended into a state
and a specific reason. One at a time because benchmarks disturb each other.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from edgekit.server import cpus, sandbox
from edgekit.server.db import Database
from edgekit.server.ingest import child_env, child_limits
from edgekit.server.metrics import Metrics
from edgekit.server.settings import Settings
from edgekit.server.store import Store

from edgekit.artifact import sha256_of

log = logging.getLogger("edgekit.server")
KEEP_SAMPLES = 2000  # run times kept per job, for the dashboard's CDF
_OOM_MARKERS = ("MemoryError", "bad_alloc", "Cannot allocate memory", "out of memory")
_INPUT_CODES = ("invalid_input", "input_mismatch", "input_missing", "input_unknown", "unbound_dims",
                "bad_input_spec")


class Worker:
    def __init__(self, settings: Settings, db: Database, store: Store, metrics: Metrics):
        self.settings, self.db, self.store, self.metrics = settings, db, store, metrics
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._cancel = threading.Event()
        self._cancel_ids: set[str] = set()  # cancels that may land between claim and start
        self._thread: threading.Thread | None = None
        self.current: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="edgekit-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; a running one is killed and requeued (it counts as interrupted)."""
        self._stopping.set()
        self._cancel.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def notify(self) -> None:
        self._wake.set()

    def recover(self) -> None:
        """After a crash: kill leftover children, requeue running jobs or fail them as interrupted."""
        for job in self.db.query("SELECT * FROM jobs WHERE status = 'running' ORDER BY seq"):
            if job["pgid"]:
                _kill_leftover(job["pgid"], self.settings.bench_module)
            if job["attempts"] < job["max_attempts"]:
                self.db.update_job(job["id"], status="queued", phase=None, pgid=None)
                log.warning("requeued interrupted job %s (attempt %d of %d)", job["id"], job["attempts"],
                            job["max_attempts"])
            else:
                self._finish(job, "failed", "interrupted", "the server stopped while this job ran, "
                             f"{job['attempts']} time(s); no attempts left", {"attempts": job["attempts"]})

    def cancel(self, job_id: str) -> None:
        """Cancel ``job_id`` if it is running or about to run (claimed but not started)."""
        self._cancel_ids.add(job_id)
        if self.current == job_id:
            self._cancel.set()

    # -- the loop ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            job = self.db.claim_next()
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self.current = job["id"]
            self._cancel.clear()
            if job["id"] in self._cancel_ids:  # canceled between claim and now
                self._cancel.set()
            try:
                self._run(job)
            except Exception as e:  # a bug in the worker must not kill the loop or leave the job running
                log.exception("worker failed on job %s", job["id"])
                self._finish(job, "failed", "internal_error", f"{type(e).__name__}: {e}", {})
            finally:
                self.current = None
                self._cancel_ids.discard(job["id"])

    def _run(self, job: dict) -> None:
        art = self.db.artifact(job["artifact_id"])
        if art is None:
            self._finish(job, "failed", "artifact_missing", f"artifact {job['artifact_id']} was deleted", {})
            return
        path = self.store.dir_for(art["sha256"]) / art["model_path"]
        actual = sha256_of(path) if path.exists() else None
        if actual != art["tree_sha256"]:
            self._finish(job, "failed", "artifact_checksum_mismatch",
                         "the stored artifact changed after upload; refusing to benchmark it",
                         {"expected": art["tree_sha256"], "actual": actual})
            return
        cfg = job["config"]
        timeout_s = float(cfg.get("timeout_s") or self.settings.job_timeout_s)
        with tempfile.TemporaryDirectory(prefix="job-", dir=self.settings.tmp_dir) as tmp:
            result_file, status_file = Path(tmp) / "result.json", Path(tmp) / "phase"
            child_cfg = {k: v for k, v in cfg.items() if k not in ("timeout_s", "runtime")}
            child_cfg.update(status_file=str(status_file), keep_samples=KEEP_SAMPLES)
            cmd = [sys.executable, "-m", self.settings.bench_module, str(path), str(result_file),
                   json.dumps(child_cfg)]
            cores = cpus.split(cfg.get("threads", 1)) if self.settings.isolate_cpus else None
            limits = dataclasses.replace(child_limits(self.settings), cpus=tuple(cores[0]) if cores else ())
            with cpus.server_off(cores[1] if cores else None):
                outcome = sandbox.run(cmd, env=child_env(cfg.get("threads", 1)), limits=limits,
                                      timeout_s=timeout_s, stderr_bytes=self.settings.stderr_bytes,
                                      cancel=self._cancel, on_start=lambda pid: self._started(job, pid),
                                      on_tick=_PhaseWatcher(self.db, job["id"], status_file))
            phase = status_file.read_text().strip() if status_file.exists() else "starting"
            report = json.loads(result_file.read_text()) if result_file.exists() else None
        self._classify(job, outcome, phase, report, timeout_s)

    def _started(self, job: dict, pid: int) -> None:
        self.db.update_job(job["id"], pgid=pid, phase="starting")

    def _classify(self, job: dict, out: sandbox.Outcome, phase: str, report: dict | None, timeout_s: float) -> None:
        base = {"phase": phase, "stderr": out.stderr[-4000:], "peak_rss_mb": round(out.peak_rss_mb, 1),
                "wall_s": round(out.wall_s, 3)}
        if out.canceled and self._stopping.is_set():
            self._interrupted(job)
        elif out.canceled:
            self._finish(job, "canceled", "canceled", "canceled while running", base, phase=phase)
        elif out.timed_out:
            self._finish(job, "timed_out", "timed_out", f"ran past {timeout_s:g} s in phase {phase!r}",
                         {**base, "timeout_s": timeout_s}, phase=phase)
        elif out.signal == signal.SIGXCPU:
            self._finish(job, "timed_out", "timed_out", f"used its CPU-time limit of {self.settings.child_cpu_s} s "
                         f"in phase {phase!r}", {**base, "signal": "SIGXCPU"}, phase=phase)
        elif report is not None and "error" not in report:
            # The server's own paths are not the client's business.
            report["artifact"] = job["artifact_id"]
            for key in ("status_file", "keep_samples"):
                report.get("config", {}).pop(key, None)
            report["server"] = {"peak_rss_mb_rusage": round(out.peak_rss_mb, 1), "wall_s": round(out.wall_s, 3),
                                "attempt": job["attempts"]}
            self._finish(job, "succeeded", None, None, None, result=report, phase="done")
        elif report is not None:
            err = report["error"]
            code = err["code"]
            reason = ("invalid_input" if code in _INPUT_CODES else
                      "out_of_memory" if code == "out_of_memory" else "runtime_error")
            self._finish(job, "failed", reason, err["message"],
                         {**base, "child_code": code, "fix": err.get("fix"), **(err.get("details") or {})},
                         phase=phase)
        elif _looks_oom(out):
            self._finish(job, "failed", "out_of_memory", f"the runtime ran out of memory (limit "
                         f"{self.settings.child_mem_mb} MB of address space) in phase {phase!r}",
                         {**base, "signal": out.signal_name, "mem_limit_mb": self.settings.child_mem_mb}, phase=phase)
        elif out.signal is not None:
            self._finish(job, "failed", "runtime_crashed", f"the runtime crashed with {out.signal_name} in phase "
                         f"{phase!r}", {**base, "signal": out.signal_name, "signal_number": out.signal},
                         phase=phase)
        else:
            self._finish(job, "failed", "runtime_crashed", f"the benchmark process exited with code "
                         f"{out.exit_code} in phase {phase!r} without a result", {**base, "exit_code": out.exit_code},
                         phase=phase)

    def _interrupted(self, job: dict) -> None:
        if job["attempts"] < job["max_attempts"]:
            self.db.update_job(job["id"], status="queued", phase=None, pgid=None)
        else:
            self._finish(job, "failed", "interrupted", "the server stopped while this job ran; no attempts left",
                         {"attempts": job["attempts"]})

    def _finish(self, job: dict, status: str, reason: str | None, message: str | None, details: dict | None,
                result: dict | None = None, phase: str | None = None) -> None:
        error = {"code": reason, "message": message, "details": details or {}} if reason else None
        # The phase is final: where the child ended, not the last one the watcher happened to copy.
        self.db.finish_job(job["id"], status, reason=reason, error=error, result=result, phase=phase)
        self.metrics.job_finished(status, reason, time.time() - (job.get("started_at") or time.time()))


class _PhaseWatcher:
    """Copy the child's phase into the job row when it changes, so clients see where a job is."""

    def __init__(self, db: Database, job_id: str, status_file: Path):
        self.db, self.job_id, self.file = db, job_id, status_file
        self.phase, self.next_read = "starting", 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now < self.next_read:
            return
        self.next_read = now + 0.2
        try:
            phase = self.file.read_text().strip()
        except OSError:
            return
        if phase and phase != self.phase:
            self.phase = phase
            self.db.update_job(self.job_id, phase=phase)


def _looks_oom(out: sandbox.Outcome) -> bool:
    if any(m in out.stderr for m in _OOM_MARKERS):
        return True
    # SIGKILL we did not send: the kernel's OOM killer.
    return out.signal == signal.SIGKILL


def _kill_leftover(pgid: int, module: str) -> None:
    """Kill a benchmark group left by a killed server. A leaderless group id cannot be reused, so it is ours;
    with a leader, check its command line first (its pid may have been recycled)."""
    cmdline = Path(f"/proc/{pgid}/cmdline")
    try:
        ours = module.encode() in cmdline.read_bytes()
    except OSError:
        ours = True
    if ours and sandbox.group_alive(pgid):
        sandbox.kill_group(pgid)
