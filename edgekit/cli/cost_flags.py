"""CLI flags for compression cost and per-layer control, shared by `export` and `compress`."""

from __future__ import annotations

import argparse

from edgekit.loss import METRICS
from edgekit.outputs import OUTPUT_KINDS


def add_layer_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exclude", action="append", metavar="REGEX",
                   help="leave layers whose module name matches (re.search) dense; repeatable")
    p.add_argument("--only", action="append", metavar="REGEX",
                   help="compress only layers whose module name matches (re.search); repeatable")
    p.add_argument("--strict", action="store_true",
                   help="a layer the recipe cannot apply to (e.g. 2:4 on rows of 27) is an error, not skipped")


def add_cost_flags(p: argparse.ArgumentParser) -> None:
    add_layer_flags(p)
    p.add_argument("--max-loss", action="append", metavar="[OUTPUT:]METRIC=VALUE",
                   help=f"compression cost allowed vs the original model; METRIC: {', '.join(METRICS)}; "
                        "repeatable; 'off' disables the gate (default: per recipe kind, see docs/compression.md)")
    p.add_argument("--output", action="append", metavar="NAME:KIND", dest="output_kinds",
                   help=f"declare an output's kind ({'|'.join(OUTPUT_KINDS)}); NAME is output_<i> or <i>")


def layer_kwargs(args) -> dict:
    return {"exclude": args.exclude, "only": args.only, "strict": args.strict}


def cost_kwargs(args) -> dict:
    return layer_kwargs(args) | {"max_loss": args.max_loss, "output_kinds": args.output_kinds}


def validate(args) -> None:
    """Parse the flags before the slow part starts, so a typo fails in milliseconds."""
    import re

    from edgekit.errors import EdgekitError
    from edgekit.loss import parse_max_loss
    from edgekit.outputs import parse_output_kinds

    for flag, patterns in (("--exclude", args.exclude), ("--only", args.only)):
        for pattern in patterns or []:
            try:
                re.compile(pattern)
            except re.error as e:
                raise EdgekitError("bad_regex", f"{flag} {pattern!r} is not a regular expression: {e}",
                                   fix=f"quote it and fix the pattern, e.g. {flag} '^stem\\.'") from None
    parse_max_loss(getattr(args, "max_loss", None))
    parse_output_kinds(getattr(args, "output_kinds", None))
