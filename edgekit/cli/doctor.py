"""`edgekit doctor`: this machine, the installed runtimes and converters, known upstream problems."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    doc = sub.add_parser("doctor", help="this machine, installed runtimes/converters, known upstream problems")
    doc.add_argument("--json", action="store_true", help="print the report as JSON")
    doc.add_argument("--measure", action="store_true",
                     help="also time ExecuTorch-XNNPACK against torch on a conv stack (needs both, ~20 s)")
    doc.set_defaults(func=cmd_doctor)


def cmd_doctor(args) -> int:
    from edgekit.doctor import format_report, run_doctor

    report = run_doctor(measure=args.measure)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
