"""server/sandbox.py on its own: limits applied, own session, bounded stderr, whole group killed."""

from __future__ import annotations

import sys
import threading

from edgekit.server import sandbox

from .conftest import processes_mentioning

LIMITS = sandbox.Limits(mem_mb=1024, cpu_s=30, fsize_mb=1, nofile=64)


def _run(code: str, **kw) -> sandbox.Outcome:
    return sandbox.run([sys.executable, "-c", code], env={}, limits=LIMITS, timeout_s=kw.pop("timeout_s", 20),
                       stderr_bytes=kw.pop("stderr_bytes", 4096), **kw)


def test_limits_and_session_apply_before_user_code():
    code = ("import os, resource, sys; r = resource; "
            "print([r.getrlimit(x) for x in (r.RLIMIT_AS, r.RLIMIT_FSIZE, r.RLIMIT_NOFILE, r.RLIMIT_CORE)], "
            "os.getsid(0) == os.getpid(), file=sys.stderr)")
    out = _run(code)
    assert out.exit_code == 0
    assert out.stderr.strip() == f"[({1 << 30}, {1 << 30}), ({1 << 20}, {1 << 20}), (64, 64), (0, 0)] True"


def test_stderr_is_bounded_and_rusage_read():
    out = _run("import sys; sys.stderr.write('x' * 1_000_000 + 'END'); b = bytearray(50 << 20)",
               stderr_bytes=100)
    assert len(out.stderr) == 100 and out.stderr.endswith("END")
    assert out.peak_rss_mb > 50


def test_file_size_limit_stops_big_writes(tmp_path):
    # Python ignores SIGXFSZ, so the write fails with EFBIG instead of the signal killing it.
    out = _run(f"open({str(tmp_path / 'big')!r}, 'wb').write(b'0' * (2 << 20))")
    assert out.exit_code == 1 and "File too large" in out.stderr


def test_timeout_and_cancel_kill_the_whole_group():
    mark = "edgekit-sandbox-test-grandchild"
    code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
            "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)', "
            f"'{mark}']); time.sleep(600)")
    out = _run(code, timeout_s=1.5)
    assert out.timed_out and out.signal_name == "SIGKILL"
    assert not processes_mentioning(mark)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    out = _run(code, cancel=cancel)
    assert out.canceled and not out.timed_out
    assert not processes_mentioning(mark)
