"""`edgekit serve`: the benchmark server on this device."""

from __future__ import annotations


def add_parser(sub) -> None:
    srv = sub.add_parser("serve", help="run the benchmark server on this device (needs the server extra)")
    srv.add_argument("--host", help="bind address (default 127.0.0.1; any other needs --token)")
    srv.add_argument("--port", type=int)
    srv.add_argument("--data-dir", help="SQLite DB and artifact store (default ~/.edgekit/server)")
    srv.add_argument("--token", help="bearer token required on every route but /v1/health")
    srv.add_argument("--allowed-host", action="append", help="extra Host header to accept (repeatable)")
    srv.add_argument("--max-upload-mb", type=int)
    srv.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from edgekit.server.cli import serve_from_args

    return serve_from_args(args)
