"""The error envelope {"error": {"code", "message", "details"}} and its OpenAPI documentation."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from edgekit.errors import EdgekitError


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorEnvelope(BaseModel):
    error: ErrorBody


DESCRIPTIONS = {
    400: "Malformed request (e.g. body is not JSON)",
    401: "Missing or wrong bearer token",
    403: "Host header not in the allowlist",
    404: "Unknown id",
    405: "Method not allowed",
    409: "Conflict with the resource's state",
    413: "Upload larger than the server's cap",
    415: "Upload's bytes are not the format claimed, not a supported format, or a pickle",
    422: "Invalid artifact, archive, job or inputs",
    429: "Queue full; retry after Retry-After seconds",
    500: "Internal error (a bug: please report it)",
    503: "Server draining: not taking new jobs",
    507: "Not enough free storage",
}
# Every route can answer these: the middleware (401, 403), routing (405) and bugs (500).
COMMON = (401, 403, 405, 500)


def responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses=`` for a route: every status it can return, all with the envelope."""
    return {c: {"model": ErrorEnvelope, "description": DESCRIPTIONS[c]} for c in sorted({*codes, *COMMON})}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers

    @classmethod
    def from_edgekit(cls, status: int, err: EdgekitError) -> ApiError:
        details = dict(err.details)
        if err.fix:
            details["fix"] = err.fix
        return cls(status, err.code, err.message, details)


def envelope(status: int, code: str, message: str, details: dict | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": details or {}}},
                        status_code=status, headers=headers)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "too_large"}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return envelope(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
                  for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in errors):
            return envelope(400, "malformed_json", "the request body is not valid JSON", {"errors": errors})
        fields = ", ".join(e["field"] for e in errors)
        return envelope(422, "invalid_request", f"invalid field(s): {fields}", {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return envelope(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        return envelope(500, "internal_error", f"{type(exc).__name__}: {exc}"[:500])


def fix_openapi_errors(schema: dict) -> dict:
    """Every error is the JSON envelope: FastAPI documents 422 with its own HTTPValidationError, and errors of
    a plain-text route with the route's media type."""
    ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path in schema.get("paths", {}).values():
        for op in path.values():
            for code, resp in op.get("responses", {}).items():
                if code.startswith(("4", "5")):
                    resp["content"] = {"application/json": {"schema": ref}}
                    resp["description"] = DESCRIPTIONS.get(int(code), resp.get("description", ""))
    comps = schema.get("components", {}).get("schemas", {})
    comps.pop("HTTPValidationError", None)
    comps.pop("ValidationError", None)
    return schema
