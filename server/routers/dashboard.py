"""/ and /dashboard: artifacts named from their manifests, a p50 chart, jobs, a latency CDF per job, two jobs compared (server-rendered HTML)."""

from __future__ import annotations

from edgekit.server import dashboard as views
from edgekit.server.deps import DbDep, StoreDep
from edgekit.server.errors import ApiError, responses
from edgekit.server.summary import summary
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(prefix="/dashboard", tags=["dashboard"])
root = APIRouter(tags=["dashboard"])  # the dashboard is also the server's front page: http://HOST:PORT/


@root.get("/", response_class=HTMLResponse, responses=responses())
@router.get("", response_class=HTMLResponse, responses=responses())
def home(db: DbDep, store: StoreDep) -> HTMLResponse:
    arts = db.query("SELECT * FROM artifacts ORDER BY created_at DESC LIMIT 100")
    jobs = db.query("SELECT * FROM jobs ORDER BY seq DESC LIMIT 500")
    ids = {a["id"] for a in arts} | {j["artifact_id"] for j in jobs}
    rows = arts + [r for r in (db.artifact(i) for i in ids - {a["id"] for a in arts}) if r]
    summaries = {r["id"]: summary(r, store) for r in rows}
    return HTMLResponse(views.home(arts, jobs[:100], summaries, bars_from=jobs))


@router.get("/jobs/{job_id}", response_class=HTMLResponse, responses=responses(404))
def job(job_id: str, db: DbDep) -> HTMLResponse:
    return HTMLResponse(views.job_page(_job(db, job_id)))


@router.get("/compare", response_class=HTMLResponse, responses=responses(404, 422))
def compare(a: str, b: str, db: DbDep) -> HTMLResponse:
    return HTMLResponse(views.compare_page(_job(db, a), _job(db, b)))


def _job(db, job_id: str) -> dict:
    row = db.job(job_id.strip())
    if row is None:
        raise ApiError(404, "job_not_found", f"no benchmark job with id {job_id!r}", {"id": job_id})
    return row
