"""`edgekit export`: a zoo model or user model to one or more targets, with parity and the ledger."""

from __future__ import annotations

import sys
from pathlib import Path

from edgekit.cli.common import recipe_and_data, spec_for
from edgekit.cli.cost_flags import add_cost_flags, cost_kwargs, validate
from edgekit.cli.target_flags import add_target_flags, target_options
from edgekit.errors import EdgekitError
from edgekit.report import cost_cell, human_bytes, parity_cell, table
from edgekit.targets import TARGET_NAMES


def add_parser(sub) -> None:
    ex = sub.add_parser("export", help="export a model to one or more targets")
    ex.add_argument("model", help="a zoo name (see `edgekit zoo list`) or path/to/file.py:function")
    ex.add_argument("--target", action="append", choices=TARGET_NAMES, help="repeatable; default: all four")
    ex.add_argument("--out", default="out", help="output root; artifacts go to OUT/<model>/<target>")
    ex.add_argument("--parity-samples", type=int, default=32)
    ex.add_argument("--no-parity-gate", action="store_true", help="keep artifacts that fail parity")
    add_target_flags(ex)  # --coreml-target, --onnx-opset, ...: from each exporter's options dataclass
    ex.add_argument("--recipe", help="compress first: a preset (see `edgekit compress --list`) or a .json/.yaml")
    ex.add_argument("--allow-decompressed", action="store_true",
                    help="keep artifacts of targets that store compressed weights dense")
    add_cost_flags(ex)
    ex.add_argument("--calibration", metavar="DIR|FILE.npz",
                    help="int8 recipes: calibration samples (a folder of images or an .npz); default: the model's data")
    ex.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from edgekit.exporters import get_exporter
    from edgekit.exporters.pipeline import export_spec

    targets = args.target or list(TARGET_NAMES)
    opts = target_options(args)
    for t in targets:  # validate every option before the slow part starts
        get_exporter(t).make_options(opts.get(t))
    validate(args)
    spec = spec_for(args.model)
    out_root = Path(args.out) / spec.name
    print(f"exporting {spec.name} to {', '.join(targets)} -> {out_root}", file=sys.stderr)
    recipe, data = recipe_and_data(args.recipe, spec) if args.recipe else (None, None)
    if args.calibration or args.max_loss:  # int8: calibration samples, and --max-loss drives the fp32 fallback
        from edgekit.exporters.compression.int8 import cli_recipe, is_int8_recipe

        recipe, calibration = cli_recipe(recipe, args.calibration, args.max_loss)
        if recipe is not None and is_int8_recipe(recipe):
            data = calibration  # None: the model's own data
    results = export_spec(spec, targets, out_root, options=opts, parity_samples=args.parity_samples,
                          parity_gate=not args.no_parity_gate, on_result=_report_one, recipe=recipe,
                          train_data=data, allow_decompressed=args.allow_decompressed, **cost_kwargs(args),
                          on_start=lambda t: print(f"  {t}: converting and checking parity ...", file=sys.stderr,
                                                   flush=True))
    print(export_table(results))
    return 0 if all(not isinstance(r, EdgekitError) for r in results.values()) else 1


def _report_one(target, result) -> None:
    if isinstance(result, EdgekitError):
        print(f"  {target}: FAILED\n    {str(result).replace(chr(10), chr(10) + '    ')}", file=sys.stderr)
    else:
        print(f"  {target}: {result.path} ({human_bytes(result.model_bytes)})", file=sys.stderr)
        if result.manifest["parity"].get("cost"):
            print(f"    fidelity (artifact vs compressed model): {parity_cell(result.manifest['parity'])}\n"
                  f"    cost (artifact vs original model): {cost_cell(result.manifest['parity'])}", file=sys.stderr)


def export_table(results) -> str:
    rows = []
    for target, r in results.items():
        if isinstance(r, EdgekitError):
            rows.append([target, "FAILED", "-", "-", r.code])
        else:
            rows.append([target, human_bytes(r.model_bytes), parity_cell(r.manifest.get("parity")),
                         cost_cell(r.manifest.get("parity")), str(r.path)])
    return table(["target", "bytes", "parity (vs compressed)", "cost (vs original)", "artifact"], rows)
