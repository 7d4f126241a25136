"""The `edgekit` command line. User mistakes print a one-paragraph error, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgekit import TARGETS
from edgekit.errors import EdgekitError
from edgekit.cli_bench import add_bench_parser
from edgekit.cli_llm import add_llm_parsers
from edgekit.cli_targets import add_target_flags, target_options
from edgekit.cli_cost import add_cost_flags, add_layer_flags, cost_kwargs, layer_kwargs, validate
from edgekit.report import cost_cell, cost_lines, human_bytes, parity_cell, table


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

    zoo = sub.add_parser("zoo", help="the model zoo").add_subparsers(metavar="ACTION")
    zl = zoo.add_parser("list", help="list models: name, params, MACs, paper")
    zl.add_argument("pattern", nargs="?", default="*")
    zl.set_defaults(func=cmd_zoo_list)

    ex = sub.add_parser("export", help="export a model to one or more targets")
    ex.add_argument("model", help="a zoo name (see `edgekit zoo list`) or path/to/file.py:function")
    ex.add_argument("--target", action="append", choices=TARGETS, help="repeatable; default: all four")
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

    co = sub.add_parser("compress", help="compress a model with a recipe and print the per-layer report")
    co.add_argument("model", nargs="?", help="a zoo name or path/to/file.py:function")
    co.add_argument("--recipe", help="a preset or a .json/.yaml recipe file")
    co.add_argument("--out", help="write recipe.json, report.json and model.pt (state dict) here")
    co.add_argument("--list", action="store_true", help="list the preset recipes")
    add_layer_flags(co)
    co.set_defaults(func=cmd_compress)

    ins = sub.add_parser("inspect", help="summarise an artifact's manifest")
    ins.add_argument("artifact")
    ins.add_argument("--json", action="store_true", help="print the whole manifest")
    ins.set_defaults(func=cmd_inspect)

    add_bench_parser(sub)


    add_llm_parsers(sub)


    from edgekit.cli_train import add_train_parser
    add_train_parser(sub)
    add_doctor_parser(sub)

    srv = sub.add_parser("serve", help="run the benchmark server on this device (needs the server extra)")
    srv.add_argument("--host", help="bind address (default 127.0.0.1; any other needs --token)")
    srv.add_argument("--port", type=int)
    srv.add_argument("--data-dir", help="SQLite DB and artifact store (default ~/.edgekit/server)")
    srv.add_argument("--token", help="bearer token required on every route but /v1/health")
    srv.add_argument("--allowed-host", action="append", help="extra Host header to accept (repeatable)")
    srv.add_argument("--max-upload-mb", type=int)
    srv.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="the main job: export a zoo model everywhere, check parity, benchmark")
    demo.add_argument("--model", default="resnet18")
    demo.add_argument("--out", default="out/demo")
    demo.add_argument("--runs", type=int, default=50)
    demo.add_argument("--threads", type=int, default=1)
    demo.add_argument("--no-server", action="store_true", help="benchmark in a child process, not via `serve`")
    demo.add_argument("--recipe", help="compress first; the report adds the compression cost per output")
    demo.add_argument("--max-loss", action="append", metavar="[OUTPUT:]METRIC=VALUE", help="as for export")
    demo.set_defaults(func=cmd_demo)
    return p


def _spec_for(ref: str):
    from edgekit.userfile import is_user_ref, load_user_spec

    if is_user_ref(ref):
        return load_user_spec(ref)
    from edgekit.model_zoo import get_spec
    return get_spec(ref)


def cmd_zoo_list(args) -> int:
    from edgekit.model_zoo import count_macs, get_spec, list_models

    rows = []
    for name in list_models(args.pattern):
        spec = get_spec(name)
        model = spec.build()
        params = sum(p.numel() for p in model.parameters())
        rows.append([name, spec.family, f"{params / 1e6:.2f}M", f"{count_macs(model, spec.example_inputs(0)) / 1e6:.1f}M",
                     spec.paper])
    print(table(["name", "family", "params", "MACs", "paper"], rows))
    return 0


def cmd_export(args) -> int:
    from edgekit.exporters import get_exporter
    from edgekit.exporters.pipeline import export_spec

    targets = args.target or list(TARGETS)
    opts = target_options(args)
    for t in targets:  # validate every option before the slow part starts
        get_exporter(t).make_options(opts.get(t))
    validate(args)
    spec = _spec_for(args.model)
    out_root = Path(args.out) / spec.name
    print(f"exporting {spec.name} to {', '.join(targets)} -> {out_root}", file=sys.stderr)
    recipe, data = _recipe_and_data(args.recipe, spec) if args.recipe else (None, None)
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


def cmd_inspect(args) -> int:
    from edgekit.artifact import load_artifact, method_specs

    art = load_artifact(args.artifact)
    m = art.manifest
    if args.json:
        print(json.dumps(m, indent=2))
        return 0
    print(f"artifact   {art.path}")
    print(f"model      {m['model']['name']} ({m['model']['class']}, {m['model']['parameters']:,} parameters)")
    print(f"target     {m['target']}  options {json.dumps(m['options'])}  precision {m['precision']}")
    print("producer   " + ", ".join(f"{k} {v}" for k, v in m["producer"].items()))
    print("inputs     " + "; ".join(f"{t['name']} {t['shape']} {t['dtype']}" for t in m["signature"]["inputs"]))
    print("outputs    " + "; ".join(f"{t['name']} {t['shape']} {t['dtype']}" for t in m["signature"]["outputs"]))
    methods = method_specs(m)
    if len(methods) > 1:  # runtime.load(path).method(name).run(...)
        print(f"methods    {len(methods)}: " + ", ".join(list(methods)[:8]) + (", ..." if len(methods) > 8 else ""))
    for f in m["files"]:
        print(f"file       {f['path']}  {f['bytes']:,} B  sha256 {f['sha256'][:16]}…")
    print(f"parity     {parity_cell(m.get('parity'))}  (artifact vs the model it was converted from)")
    for line in cost_lines(m.get("parity")):
        print(f"cost       {line}  (artifact vs the original model)")
    kinds = m["signature"].get("output_kinds")
    if kinds:
        print("kinds      " + ", ".join(f"{k}: {v}" for k, v in kinds.items()))
    info = m.get("target_info", {})
    if "delegation" in info:
        d = info["delegation"]
        print(f"delegation {d['delegated_share'] * 100:.1f}% of nodes in {d['backend']}; "
              f"portable ops: {d['portable_ops'] or 'none'}")
    if "structure" in info:
        s = info["structure"]
        print(f"coreml     {sum(s['ops'].values())} ops, weights {s['weight_encodings']}")
    comp = m.get("compression", {})
    ledger = comp.get("ledger") or []
    recipe = comp.get("recipe")
    print(f"compression {recipe['name'] + ' ' + recipe['hash'] if recipe else 'none'} ({len(ledger)} ledger rows)")
    if ledger:
        from edgekit.exporters.compression.ledger import ledger_table
        print(ledger_table(comp))
    for skip in comp.get("skipped") or []:
        print(f"skipped    {skip['layer']} (step {skip['step']}, {skip['type']}): {skip['reason']}")
    if comp.get("int8"):  # int8 recipe: calibration and the layers the fallback kept in fp32
        q = comp["int8"]
        print(f"int8       calibration {q['calibration']['source']} ({q['calibration']['samples']} samples); "
              f"kept fp32: {', '.join(f'{k} ({v})' for k, v in q['keep_fp32'].items()) or 'none'}")
    if comp.get("file"):
        from edgekit.exporters.compression.ledger import file_line
        print(file_line(comp))
    return 0


def _recipe_and_data(ref: str, spec):
    from edgekit.exporters.compression import load_recipe
    from edgekit.exporters.compression.finetune import data_for_spec

    recipe = load_recipe(ref)  # labelled digits for the zoo's classifiers, else label-free distillation
    return recipe, (data_for_spec(spec) if recipe.training else None)


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
    spec = _spec_for(args.model)
    validate(args)
    recipe, data = _recipe_and_data(args.recipe, spec)
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







def cmd_serve(args) -> int:
    from edgekit.server.cli import serve_from_args

    return serve_from_args(args)





def cmd_demo(args) -> int:
    from edgekit.demo import run_demo

    code, summary = run_demo(args.model, Path(args.out), runs=args.runs, threads=args.threads,
                             via_server=not args.no_server, say=lambda msg: print(msg, file=sys.stderr, flush=True),
                             recipe=args.recipe, max_loss=args.max_loss)
    print(summary)
    return code


def add_doctor_parser(sub) -> None:
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


if __name__ == "__main__":
    sys.exit(main())
