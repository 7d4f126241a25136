"""The FastAPI app and ``serve()``.

    >>> from edgekit.server.main import create_app
    >>> from edgekit.server.settings import Settings
    >>> app = create_app(Settings(data_dir="/tmp/edgekit-server"))   # doctest: +SKIP

Importing this module never imports torch or a native runtime: those only run
in sandboxed children.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from edgekit.server import errors, security
from edgekit.server.routers import artifacts, benchmarks, dashboard, system
from edgekit.server.settings import Settings
from edgekit.server.state import AppState
from fastapi import FastAPI

import edgekit

log = logging.getLogger("edgekit.server")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    state = AppState.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.worker.start()
        yield
        state.draining = True
        state.worker.stop()
        state.db.close()

    app = FastAPI(title="edgekit benchmark server", version=edgekit.__version__, lifespan=lifespan,
                  description="Benchmarks uploaded edge artifacts on this device, one at a time, each in a "
                              "sandboxed child process. Errors: {\"error\": {\"code\", \"message\", \"details\"}}.")
    app.state.edgekit = state
    errors.install(app)
    security.install(app, settings)
    if settings.cors_origins:  # off by default (R6)
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type"])
    for r in (artifacts.router, benchmarks.router, system.router, dashboard.router, dashboard.root):
        app.include_router(r)

    def openapi() -> dict:
        if not app.openapi_schema:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = errors.fix_openapi_errors(schema)
        return app.openapi_schema

    app.openapi = openapi
    return app


def serve(settings: Settings) -> None:
    """Run the server in the foreground until SIGINT/SIGTERM."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    log.info("serving on http://%s:%d (data in %s, token %s)", settings.host, settings.port, settings.data_dir,
             "required" if settings.token else "off")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", server_header=False,
                proxy_headers=False)
