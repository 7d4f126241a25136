"""The `edgekit` command line: one module per command in this package.

A command module has ``add_parser(sub)``: it adds its subparser and sets ``func``, which
returns the exit code. User mistakes (EdgekitError) print a one-paragraph error, never
a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from edgekit.errors import EdgekitError

# The commands, in the order `edgekit --help` lists them: a module of this package (``add_parser``), or
# "package.module:function" for a command that lives elsewhere. Register a new command by adding it here.
COMMANDS = (
    "zoo", "export", "compress", "inspect", "bench", "generate", "export_llm", "compress_llm", "train", "doctor",
    "edgekit.cli_bundle:add_bundle_parser", "serve", "demo",
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except EdgekitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgekit", description="Export, verify and benchmark edge models.")
    sub = p.add_subparsers(metavar="COMMAND")
    for command in COMMANDS:
        module, _, function = command.partition(":")
        module = module if "." in module else f"edgekit.cli.{module}"
        getattr(importlib.import_module(module), function or "add_parser")(sub)
    return p


if __name__ == "__main__":
    sys.exit(main())
