"""Counters for /v1/metrics, rendered in the Prometheus text format (no client library needed)."""

from __future__ import annotations

import threading
from collections import Counter

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.jobs: Counter[tuple[str, str]] = Counter()
        self.uploads: Counter[str] = Counter()
        self._latency = [0] * (len(_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_n = 0

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            i = next((i for i, b in enumerate(_BUCKETS) if seconds <= b), len(_BUCKETS))
            self._latency[i] += 1
            self._latency_sum += seconds
            self._latency_n += 1

    def job_finished(self, status: str, reason: str | None, _seconds: float) -> None:
        with self._lock:
            self.jobs[(status, reason or "")] += 1

    def upload(self, outcome: str) -> None:
        with self._lock:
            self.uploads[outcome] += 1

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        lines = []
        with self._lock:
            lines += ["# HELP edgekit_http_requests_total HTTP requests by method, route and status.",
                      "# TYPE edgekit_http_requests_total counter"]
            for (m, r, s), n in sorted(self.requests.items()):
                lines.append(f'edgekit_http_requests_total{{method="{m}",route="{_esc(r)}",status="{s}"}} {n}')
            lines += ["# HELP edgekit_http_request_seconds API request latency.",
                      "# TYPE edgekit_http_request_seconds histogram"]
            acc = 0
            for b, n in zip((*_BUCKETS, "+Inf"), self._latency):
                acc += n
                lines.append(f'edgekit_http_request_seconds_bucket{{le="{b}"}} {acc}')
            lines += [f"edgekit_http_request_seconds_sum {self._latency_sum:.6f}",
                      f"edgekit_http_request_seconds_count {self._latency_n}"]
            lines += ["# HELP edgekit_jobs_finished_total Jobs finished since start, by status and reason.",
                      "# TYPE edgekit_jobs_finished_total counter"]
            for (s, r), n in sorted(self.jobs.items()):
                lines.append(f'edgekit_jobs_finished_total{{status="{s}",reason="{r}"}} {n}')
            lines += ["# HELP edgekit_uploads_total Uploads by outcome.", "# TYPE edgekit_uploads_total counter"]
            for o, n in sorted(self.uploads.items()):
                lines.append(f'edgekit_uploads_total{{outcome="{_esc(o)}"}} {n}')
        for name, (help_, value) in sorted(gauges.items()):
            lines += [f"# HELP {name} {help_}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
