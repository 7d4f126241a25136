"""`edgekit demo`: export a zoo model everywhere, check parity, benchmark."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub) -> None:
    demo = sub.add_parser("demo", help="the main job: export a zoo model everywhere, check parity, benchmark")
    demo.add_argument("--model", default="resnet18")
    demo.add_argument("--out", default="out/demo")
    demo.add_argument("--runs", type=int, default=50)
    demo.add_argument("--threads", type=int, default=1)
    demo.add_argument("--no-server", action="store_true", help="benchmark in a child process, not via `serve`")
    demo.add_argument("--recipe", help="compress first; the report adds the compression cost per output")
    demo.add_argument("--max-loss", action="append", metavar="[OUTPUT:]METRIC=VALUE", help="as for export")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from edgekit.demo import run_demo

    code, summary = run_demo(args.model, Path(args.out), runs=args.runs, threads=args.threads,
                             via_server=not args.no_server, say=lambda msg: print(msg, file=sys.stderr, flush=True),
                             recipe=args.recipe, max_loss=args.max_loss)
    print(summary)
    return code
