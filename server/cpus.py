"""Keep the API off the cores a benchmark runs on, so polling clients do not disturb the numbers.

With N >= 2 cores allowed, a job with T threads gets the last min(T, N - 1) cores
and every thread of the server process moves to the others for the job's
duration. Linux only (sched_setaffinity per thread); elsewhere a no-op.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


def split(threads: int) -> tuple[list[int], list[int]] | None:
    """(benchmark cores, server cores), or None when there is nothing to split."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    n_bench = max(1, min(int(threads), len(allowed) - 1))
    return allowed[-n_bench:], allowed[:-n_bench]


def _set_process(cores: list[int]) -> None:
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # a thread may end while we walk the list
            os.sched_setaffinity(int(tid), cores)


@contextlib.contextmanager
def server_off(cores: list[int] | None) -> Iterator[None]:
    """Move the whole server process onto ``cores`` until the block ends."""
    if not cores or not os.path.isdir("/proc/self/task"):
        yield
        return
    before = sorted(os.sched_getaffinity(0))
    _set_process(cores)
    try:
        yield
    finally:
        _set_process(before)
