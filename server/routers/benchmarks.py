"""/v1/benchmarks: submit, get, list, cancel."""

from __future__ import annotations

import time

from edgekit.errors import EdgekitError
from edgekit.inputspec import resolve
from edgekit.server.deps import DbDep, SettingsDep, StateDep, WorkerDep
from edgekit.server.errors import ApiError, responses
from edgekit.server.schemas import RUNTIMES, JobCreate, JobList, JobPublic, JobStatus, job_public
from fastapi import APIRouter, Query

router = APIRouter(prefix="/v1/benchmarks", tags=["benchmarks"])


@router.post("", status_code=201, response_model=JobPublic, responses=responses(400, 404, 422, 429, 503))
def submit(body: JobCreate, state: StateDep, db: DbDep, settings: SettingsDep, worker: WorkerDep) -> JobPublic:
    """Queue a benchmark. Jobs run one at a time, oldest first."""
    if state.draining:
        raise ApiError(503, "draining", "the server is shutting down and takes no new jobs",
                       {"fix": "submit again once it is back"}, headers={"Retry-After": "30"})
    art = db.artifact(body.artifact_id)
    if art is None:
        raise ApiError(404, "artifact_not_found", f"no artifact with id {body.artifact_id!r}",
                       {"id": body.artifact_id, "fix": "upload it first: POST /v1/artifacts"})
    if body.timeout_s is not None and body.timeout_s > settings.job_timeout_s:
        raise ApiError(422, "timeout_too_long", f"timeout_s {body.timeout_s:g} is above this server's limit of "
                       f"{settings.job_timeout_s:g} s", {"field": "body.timeout_s", "max": settings.job_timeout_s,
                                                         "fix": "ask for less, or raise EDGEKIT_SERVER_JOB_TIMEOUT_S"})
    _check_runtime(body, art, state)
    _check_inputs(body, art)
    queued = db.count_jobs("queued")
    if queued >= settings.max_queue:
        raise ApiError(429, "queue_full", f"{queued} jobs are queued; the cap is {settings.max_queue}",
                       {"queued": queued, "max_queue": settings.max_queue}, headers={"Retry-After": "10"})
    config = body.model_dump(exclude={"artifact_id"})
    for key in ("prompt_tokens", "new_tokens"):  # LLM-only: a classifier job's config stays as it was
        if config[key] is None:
            del config[key]
    if isinstance(body.inputs, list):
        config["input_spec"] = [t.model_dump(exclude_none=True) for t in body.inputs]
        config["inputs"] = "spec"
    job = db.insert_job(art, config, settings.max_attempts)
    worker.notify()
    return job_public(job, _position(db, job))


@router.get("", response_model=JobList, responses=responses(422))
def list_jobs(db: DbDep, status: JobStatus | None = None, artifact_id: str | None = None,
              limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=1_000_000_000)) -> JobList:
    rows, count = db.page("jobs", {"status": status, "artifact_id": artifact_id}, "seq DESC", limit, offset)
    return JobList(items=[job_public(r) for r in rows], count=count)


@router.get("/{job_id}", response_model=JobPublic, responses=responses(404))
def get_job(job_id: str, db: DbDep) -> JobPublic:
    job = _get(db, job_id)
    return job_public(job, _position(db, job))


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=responses(404, 409))
def cancel(job_id: str, state: StateDep, db: DbDep, worker: WorkerDep) -> JobPublic:
    """Cancel a queued job at once, or kill a running one's process group."""
    job = _get(db, job_id)
    if job["status"] == "queued":
        changed = db.execute("UPDATE jobs SET status = 'canceled', reason = 'canceled', finished_at = ? "
                             "WHERE id = ? AND status = 'queued'", (time.time(), job_id))
        if changed:
            state.metrics.job_finished("canceled", "canceled", 0.0)
            return job_public(db.job(job_id))
        job = db.job(job_id)
    if job["status"] == "running":
        worker.cancel(job_id)
        return job_public(db.job(job_id))
    raise ApiError(409, "job_finished", f"job {job_id} already ended as {job['status']}",
                   {"status": job["status"]})


def _get(db, job_id: str) -> dict:
    job = db.job(job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no benchmark job with id {job_id!r}",
                       {"id": job_id, "fix": "list jobs with GET /v1/benchmarks"})
    return job


def _position(db, job: dict) -> int | None:
    if job["status"] != "queued":
        return None
    return db.one("SELECT COUNT(*) AS n FROM jobs WHERE status = 'queued' AND seq < ?", (job["seq"],))["n"]


def _check_runtime(body: JobCreate, art: dict, state) -> None:
    expected = RUNTIMES[art["format"]]
    if body.runtime is not None and body.runtime != expected:
        raise ApiError(422, "runtime_mismatch", f"runtime {body.runtime!r} cannot run a {art['format']} artifact; "
                       f"it runs with {expected}", {"field": "body.runtime", "value": body.runtime,
                                                     "choices": [expected]})
    v = art.get("validation") or {}
    if not v.get("loaded"):
        raise ApiError(422, "runtime_unavailable", f"this device cannot run {art['format']} artifacts: "
                       f"{v.get('reason')}", {"format": art["format"], "reason": v.get("reason")})


def _check_inputs(body: JobCreate, art: dict) -> None:
    """Refuse here what the child would refuse: unknown names, mismatched dims, dims left without a size."""
    sig = art.get("signature")
    if body.inputs == "reference" and not art["has_reference"]:
        raise ApiError(422, "no_reference_inputs", "this artifact carries no reference inputs (it was uploaded as a "
                       "bare model file)", {"field": "body.inputs",
                                            "fix": "pass inputs='random' (with dims for symbolic dimensions) or an "
                                                   "explicit spec"})
    if body.inputs == "reference" and body.dims:  # never ignore a size the user gave
        raise ApiError(422, "bad_input_spec", f"dims {body.dims} apply to generated inputs; the reference inputs "
                       "have fixed shapes", {"field": "body.dims",
                                             "fix": "pass inputs='random' (or an explicit spec) with dims, or drop dims"})
    if not sig or body.inputs == "reference":
        return
    specs = [t.model_dump(exclude_none=True) for t in body.inputs] if isinstance(body.inputs, list) else []
    try:
        resolve(sig["inputs"], specs, body.dims)
    except EdgekitError as e:
        raise ApiError(422, e.code, e.message, {"field": "body.inputs", "fix": e.fix, **e.details,
                                                "expected": sig["inputs"], "given": specs}) from e
