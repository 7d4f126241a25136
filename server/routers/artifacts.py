"""/v1/artifacts: upload (streamed multipart), list, get, delete."""

from __future__ import annotations

import re

from edgekit.server import upload as upload_mod
from edgekit.server.deps import DbDep, SettingsDep, StateDep, StoreDep
from edgekit.server.errors import ApiError, responses
from edgekit.server.ingest import ingest
from edgekit.server.schemas import ArtifactList, ArtifactPublic, artifact_public
from edgekit.server.sniff import FORMATS
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/v1/artifacts", tags=["artifacts"])
_SHA = re.compile(r"^[0-9a-f]{64}$")

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "a .tflite, .pte or .onnx file, a zipped .mlpackage, or a zipped edgekit "
                                        "artifact directory (manifest.json + model + reference_io.npz)"},
                "format": {"type": "string", "enum": list(FORMATS),
                           "description": "optional claim, checked against the bytes (415 on mismatch)"},
            }}}},
    }
}


@router.post("", status_code=201, response_model=ArtifactPublic, openapi_extra=_UPLOAD_BODY,
             responses={200: {"model": ArtifactPublic, "description": "Already stored (same sha256)"},
                        **responses(400, 413, 415, 422, 507)})
async def upload_artifact(request: Request, response: Response, state: StateDep, settings: SettingsDep,
                          store: StoreDep, db: DbDep) -> ArtifactPublic:
    """Upload an artifact. The format is sniffed from the bytes; the filename is metadata only."""
    if store.free_bytes() < settings.min_free_bytes:
        state.metrics.upload("storage_full")
        raise ApiError(507, "storage_full", f"less than {settings.min_free_bytes:,} bytes free in the data directory",
                       {"free_bytes": store.free_bytes(), "fix": "delete artifacts or free disk space"})
    try:
        up = await upload_mod.receive(request, store, settings.max_upload_bytes)
        row, created = await run_in_threadpool(ingest, up, settings, db, store)
    except ApiError as e:
        state.metrics.upload(e.code)
        raise
    except OSError as e:
        if e.errno == 28:  # ENOSPC
            state.metrics.upload("storage_full")
            raise ApiError(507, "storage_full", "the disk filled up during the upload") from e
        raise
    state.metrics.upload("created" if created else "existing")
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/artifacts/{row['id']}"
    return artifact_public(row)


@router.get("", response_model=ArtifactList, responses=responses(422))
def list_artifacts(db: DbDep, sha256: str | None = Query(None, description="find an artifact by its sha256"),
                   format: str | None = None, limit: int = Query(100, ge=1, le=1000),
                   offset: int = Query(0, ge=0, le=1_000_000_000)) -> ArtifactList:
    if sha256 is not None and not _SHA.match(sha256):
        raise ApiError(422, "invalid_request", f"sha256 {sha256!r} is not 64 lowercase hex digits",
                       {"field": "query.sha256"})
    rows, count = db.page("artifacts", {"sha256": sha256, "format": format}, "created_at DESC", limit, offset)
    return ArtifactList(items=[artifact_public(r) for r in rows], count=count)


@router.get("/{artifact_id}", response_model=ArtifactPublic, responses=responses(404))
def get_artifact(artifact_id: str, db: DbDep) -> ArtifactPublic:
    return artifact_public(_get(db, artifact_id))


@router.delete("/{artifact_id}", status_code=204, response_class=Response, responses=responses(404, 409))
def delete_artifact(artifact_id: str, db: DbDep, store: StoreDep) -> Response:
    row = _get(db, artifact_id)
    active = db.one("SELECT COUNT(*) AS n FROM jobs WHERE artifact_id = ? AND status IN ('queued', 'running')",
                    (artifact_id,))["n"]
    if active:
        raise ApiError(409, "artifact_in_use", f"artifact {artifact_id} has {active} queued or running job(s)",
                       {"active_jobs": active, "fix": "cancel its jobs first"})
    db.execute("DELETE FROM artifacts WHERE id = ?", (artifact_id,))
    store.remove(row["sha256"])
    return Response(status_code=204)


def _get(db, artifact_id: str) -> dict:
    row = db.artifact(artifact_id)
    if row is None:
        raise ApiError(404, "artifact_not_found", f"no artifact with id {artifact_id!r}",
                       {"id": artifact_id, "fix": "list artifacts with GET /v1/artifacts"})
    return row
