"""/v1/health, /v1/device, /v1/metrics."""

from __future__ import annotations

import os

from edgekit.server.deps import StateDep
from edgekit.server.errors import responses
from edgekit.server.schemas import DeviceInfo, Health, RuntimeInfo
from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

import edgekit

router = APIRouter(prefix="/v1", tags=["system"])


@router.get("/health", response_model=Health, responses={403: responses(403)[403], 500: responses(500)[500]})
def health(state: StateDep) -> Health:
    """Liveness; the one route that needs no token."""
    return Health(status="draining" if state.draining else "ok", version=edgekit.__version__,
                  worker_alive=state.worker.alive, queued=state.db.count_jobs("queued"),
                  running=state.db.count_jobs("running"))


@router.get("/device", response_model=DeviceInfo, responses=responses())
async def device(state: StateDep) -> DeviceInfo:
    """What the numbers depend on: CPU, cores, memory, OS, and each runtime's version or why it is missing."""
    from edgekit.bench import machine_info

    info = machine_info()
    runtimes = await run_in_threadpool(state.runtimes)
    return DeviceInfo(platform=info["platform"], machine=info["machine"], cpu=info.get("cpu"),
                      cpu_count=info["cpu_count"], cpu_affinity=info.get("cpu_affinity"),
                      load_average=info.get("load_average"), memory_bytes=_memory_bytes(), python=info["python"],
                      edgekit=edgekit.__version__,
                      runtimes={k: RuntimeInfo(**v) for k, v in runtimes.items()})


@router.get("/metrics", response_class=PlainTextResponse, responses=responses(),
            description="Prometheus text format 0.0.4")
def metrics(state: StateDep) -> PlainTextResponse:
    db = state.db
    gauges = {
        "edgekit_jobs_queued": ("Jobs waiting.", db.count_jobs("queued")),
        "edgekit_jobs_running": ("Jobs running (0 or 1).", db.count_jobs("running")),
        "edgekit_artifacts": ("Artifacts stored.", db.one("SELECT COUNT(*) AS n FROM artifacts")["n"]),
        "edgekit_store_free_bytes": ("Free bytes in the data directory.", state.store.free_bytes()),
        "edgekit_draining": ("1 while shutting down.", int(state.draining)),
    }
    return PlainTextResponse(state.metrics.render(gauges), media_type="text/plain; version=0.0.4")


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
