"""`edgekit compress`: compress a model with a recipe and print the per-layer report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgekit.cli.common import recipe_and_data, spec_for
from edgekit.cli.cost_flags import add_layer_flags, layer_kwargs, validate
from edgekit.errors import EdgekitError
from edgekit.report import table


def add_parser(sub) -> None:
    co = sub.add_parser("compress", help="compress a model with a recipe and print the per-layer report")
    co.add_argument("model", nargs="?", help="a zoo name or path/to/file.py:function")
    co.add_argument("--recipe", help="a preset or a .json/.yaml recipe file")
    co.add_argument("--out", help="write recipe.json, report.json and model.pt (state dict) here")
    co.add_argument("--list", action="store_true", help="list the preset recipes")
    add_layer_flags(co)
    co.set_defaults(func=cmd_compress)


def cmd_compress(args) -> int:
    from edgekit.exporters.compression import PRESETS
    from edgekit.exporters.compression.cache import cached_compress

    if args.list or not args.model:
        print(table(["preset", "steps"], [[n, " -> ".join(s.default.type_tag if s.default else "-" for s in r.steps)]
                                          for n, r in sorted(PRESETS.items())]))
        return 0 if args.list else 2
    if not args.recipe:
        raise EdgekitError("missing_recipe", "edgekit compress needs --recipe",
                           fix=f"pass --recipe with one of {', '.join(sorted(PRESETS))} or a .json/.yaml file")
    spec = spec_for(args.model)
    validate(args)
    recipe, data = recipe_and_data(args.recipe, spec)
    model, report = cached_compress(spec.build(), recipe, data, **layer_kwargs(args))
    print(report.table())
    print(f"weight bytes (expected) / fp32: {report.ratio():.3f}")
    if args.out:
        import torch

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "recipe.json").write_text(recipe.to_json())
        (out / "report.json").write_text(json.dumps(report.to_json(), indent=2))
        torch.save(model.state_dict(), out / "model.pt")
        print(f"wrote {out}/recipe.json, report.json, model.pt", file=sys.stderr)
    return 0
