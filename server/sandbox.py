"""Run an untrusted child (R1): own session, resource limits, bounded stderr, group kill, rusage.

A native runtime loading a user's file is a user's code running: it may segfault,
hang, eat memory or fork. The child gets its own session so the whole process
group can be killed at once, and rlimits so it cannot take the machine down.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_POLL_S = 0.05


@dataclass(frozen=True)
class Limits:
    mem_mb: int
    cpu_s: int
    fsize_mb: int
    nofile: int
    cpus: tuple[int, ...] = ()  # cores the child is pinned to; () = inherit

    def rlimits(self) -> list[tuple[int, int, int]]:
        mb = 1024 * 1024
        return [(resource.RLIMIT_AS, self.mem_mb * mb, self.mem_mb * mb),
                (resource.RLIMIT_CPU, self.cpu_s, self.cpu_s + 5),
                (resource.RLIMIT_FSIZE, self.fsize_mb * mb, self.fsize_mb * mb),
                (resource.RLIMIT_NOFILE, self.nofile, self.nofile),
                (resource.RLIMIT_CORE, 0, 0)]  # no core dumps of user models on disk

    def wrap(self, cmd: list[str]) -> list[str]:
        """``cmd`` behind a tiny launcher that sets the limits and execs it.

        Not preexec_fn: the server is multi-threaded, and Python code between fork and exec can deadlock
        on a lock another thread held at fork time.
        """
        return [sys.executable, "-S", "-c", _LAUNCHER, json.dumps([self.rlimits(), list(self.cpus)]), *cmd]


_LAUNCHER = ("import json, os, resource, sys\n"
             "limits, cpus = json.loads(sys.argv[1])\n"
             "for what, soft, hard in limits: resource.setrlimit(what, (soft, hard))\n"
             "if cpus: os.sched_setaffinity(0, cpus)\n"
             "os.execv(sys.argv[2], sys.argv[2:])")


@dataclass
class Outcome:
    exit_code: int | None  # None when killed by a signal
    signal: int | None
    timed_out: bool
    canceled: bool
    peak_rss_mb: float  # from the child's rusage (wait4): the child itself, not its grandchildren
    wall_s: float
    stderr: str

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"


def run(cmd: list[str], *, env: dict[str, str], limits: Limits, timeout_s: float, stderr_bytes: int,
        cancel: threading.Event | None = None, on_start: Callable[[int], None] | None = None,
        on_tick: Callable[[], None] | None = None, cwd: str | None = None) -> Outcome:
    """Run ``cmd`` to completion, timeout or cancel; the process group is always killed at the end."""
    t0 = time.monotonic()
    proc = subprocess.Popen(limits.wrap(cmd), env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, close_fds=True)
    pid = proc.pid
    if on_start:
        on_start(pid)
    tail = _TailReader(proc.stderr, stderr_bytes)
    timed_out = canceled = False
    status = rusage = None
    while True:
        got, status, rusage = os.wait4(pid, os.WNOHANG)
        if got == pid:
            break
        if cancel is not None and cancel.is_set():
            canceled = True
        elif time.monotonic() - t0 > timeout_s:
            timed_out = True
        if timed_out or canceled:
            kill_group(pid)
            _, status, rusage = os.wait4(pid, 0)
            break
        if on_tick:
            on_tick()
        time.sleep(_POLL_S)
    proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from reaping or warning later
    kill_group(pid)  # grandchildren that outlived the child (e.g. ignoring SIGTERM) go too
    tail.join(timeout=2.0)
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    return Outcome(
        exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        signal=sig,
        timed_out=timed_out,
        canceled=canceled,
        peak_rss_mb=rusage.ru_maxrss / 1024 if rusage else 0.0,
        wall_s=time.monotonic() - t0,
        stderr=tail.text(),
    )


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class _TailReader(threading.Thread):
    """Drain the child's stderr, keeping only the last ``limit`` bytes."""

    def __init__(self, stream, limit: int):
        super().__init__(daemon=True)
        self._stream, self._limit, self._buf = stream, limit, bytearray()
        self.start()

    def run(self) -> None:
        try:
            while chunk := self._stream.read1(65536):
                self._buf += chunk
                if len(self._buf) > 2 * self._limit:
                    del self._buf[: len(self._buf) - self._limit]
        except (OSError, ValueError):
            pass
        finally:
            self._stream.close()

    def text(self) -> str:
        return bytes(self._buf[-self._limit:]).decode("utf-8", "replace")
