"""`edgekit serve`: flags override EDGEKIT_SERVER_* environment, which overrides defaults."""

from __future__ import annotations

import argparse

from edgekit.errors import MissingDependency


def serve_from_args(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import pydantic_settings  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise MissingDependency(e.name or "fastapi", "server", "edgekit serve") from e
    from edgekit.server.main import serve
    from edgekit.server.settings import LOOPBACK_NAMES, Settings

    overrides = {"host": args.host, "port": args.port, "data_dir": args.data_dir, "token": args.token}
    if args.max_upload_mb:
        overrides["max_upload_bytes"] = args.max_upload_mb * 1024 * 1024
    if args.allowed_host:
        overrides["allowed_hosts"] = [*LOOPBACK_NAMES, *args.allowed_host]
    serve(Settings(**{k: v for k, v in overrides.items() if v is not None}))
    return 0
