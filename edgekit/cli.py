"""The `edgekit` command line. User mistakes print a one-paragraph error, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from edgekit import TARGETS
from edgekit.errors import EdgekitError
from edgekit.cli_cost import add_cost_flags, add_layer_flags, cost_kwargs, layer_kwargs, validate
from edgekit.report import cost_cell, cost_lines, human_bytes, latency_cell, parity_cell, table


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
    ex.add_argument("--coreml-target", default="iOS17", help="iOS16, iOS17 or iOS18")
    ex.add_argument("--coreml-precision", default="fp16", help="fp16 or fp32")
    ex.add_argument("--coreml-compute-units", default="ALL", help="ALL, CPU_ONLY, CPU_AND_GPU, CPU_AND_NE")
    ex.add_argument("--onnx-opset", type=int, default=18)
    ex.add_argument("--executorch-delegate", default="xnnpack", help="xnnpack or none")
    ex.add_argument("--onnx-lut-encoding", default="packed",
                    help="lookup-table weights in ONNX: packed (default), uint4 (opset >= 21), uint8 or dense")
    ex.add_argument("--executorch-requantize", default="none",
                    help="compressed layers in ExecuTorch: none (dense fp32, exact) or dynamic_int8 (lossy)")
    ex.add_argument("--executorch-kernels", default="none",
                    help="compressed Linear layers in ExecuTorch: none (dense) or edgekit (native LUT/shift/2:4 "
                         "kernels at their bit width; needs `make native`)")
    ex.add_argument("--tflite-requantize", default="none",
                    help="clustered layers in TFLite: none (dense fp32, exact) or int8 (per channel + DEQUANTIZE, lossy)")
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

    be = sub.add_parser("bench", help="benchmark an artifact in a fresh process")
    be.add_argument("artifact", nargs="+")
    be.add_argument("--runs", type=int, default=50)
    be.add_argument("--warmup", type=int, default=10)
    be.add_argument("--threads", type=int, default=1)
    be.add_argument("--min-seconds", type=float, default=1.0)
    be.add_argument("--json", help="also write the results to this file")
    be.add_argument("--server", action="append", metavar="URL",
                    help="benchmark on an `edgekit serve` server instead (repeatable: side by side)")
    be.add_argument("--token", default=os.environ.get("EDGEKIT_SERVER_TOKEN"), help="the servers' bearer token")
    be.add_argument("--inputs", choices=("reference", "random"), default="reference",
                    help="the artifact's reference inputs (default; random when it has none) or random data")
    be.add_argument("--input", action="append", metavar="NAME[:SHAPE][:DTYPE][:FILL]",
                    help="an input's shape, dtype and fill, repeatable: x:1x3x640x640, rate:int64:=16000, "
                         "ids:1x16:int64:0..30000 (integers default to random 1..16)")
    be.add_argument("--dim", action="append", metavar="NAME=SIZE",
                    help="size of a symbolic dimension, repeatable: --dim N=1 --dim H=640")
    be.add_argument("--html", help="also write an HTML page with a p50 chart (servers side by side) to this file")
    be.add_argument("--prompt-tokens", type=int, default=None,
                    help="LLM artifacts: prompt length of each generation round (default 16)")
    be.add_argument("--new-tokens", type=int, default=None,
                    help="LLM artifacts: decode steps per round (default 128); --runs counts decode steps")
    be.set_defaults(func=cmd_bench)

    gen = sub.add_parser("generate", help="generate text with an exported LLM artifact (torch-free)")
    gen.add_argument("artifact")
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--max-new-tokens", type=int, default=64)
    gen.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    gen.add_argument("--top-k", type=int, default=40)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--threads", type=int, default=1)
    gen.add_argument("--first-threshold", type=float, default=None,
                     help="FiRST artifacts: override the routers' threshold (0 = never skip a layer)")
    gen.set_defaults(func=cmd_generate)

    el = sub.add_parser("export-llm", help="export a Hugging Face-format Llama checkpoint (prefill + decode)")
    el.add_argument("checkpoint", help="directory with config.json, *.safetensors and tokenizer.json")
    el.add_argument("--target", action="append", choices=("executorch", "onnx", "tflite", "coreml"),
                    help="repeatable; default: executorch (coreml: one iOS18 multifunction .mlpackage, fp16)")
    el.add_argument("--out", default="out")
    el.add_argument("--prefill-len", type=int, default=16)
    el.add_argument("--weights", default="fp32", choices=("fp32", "int4", "int8"),
                    help="linear weights in the .pte: int4 (groups) / int8 (per channel) with int8 dynamic "
                    "activations on XNNPACK; executorch only")
    el.add_argument("--group-size", type=int, default=32,
                    help="int4: weights per scale (default 32; 0 = one scale per output channel)")
    el.add_argument("--first", metavar="ROUTERS", default=None,
                    help="FiRST: a first_routers.safetensors trained for this checkpoint; exports per-layer methods "
                         "+ routers (+ fused decode for the skip sets the routers choose) so skipped layers cost "
                         "nothing (executorch only)")
    el.add_argument("--first-threshold", type=float, default=None, help="FiRST: override the routers' threshold")
    el.set_defaults(func=cmd_export_llm)

    cl = sub.add_parser("compress-llm", help="eDKM: cluster an LLM checkpoint's linear layers to 3/4 bits while "
                        "fine-tuning under torch.distributed")
    cl.add_argument("checkpoint", help="directory with config.json, *.safetensors and tokenizer.json")
    cl.add_argument("--bits", type=int, choices=(3, 4), default=4)
    cl.add_argument("--nproc", type=int, default=2, help="processes to spawn (ignored under torchrun)")
    cl.add_argument("--backend", default="auto", choices=("auto", "gloo", "nccl"), help="auto: nccl with CUDA")
    cl.add_argument("--steps", type=int, default=150)
    cl.add_argument("--batch", type=int, default=8, help="global batch, split over the processes")
    cl.add_argument("--seq-len", type=int, default=128)
    cl.add_argument("--lr", type=float, default=3e-4)
    cl.add_argument("--threads", type=int, default=1, help="torch threads per process")
    cl.add_argument("--out", default="out/llm", help="clustered checkpoint: OUT/<checkpoint>_edkm<bits>")
    cl.set_defaults(func=cmd_compress_llm)

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


def export_options(args) -> dict[str, dict]:
    return {
        "coreml": {"minimum_deployment_target": args.coreml_target, "compute_precision": args.coreml_precision,
                   "compute_units": args.coreml_compute_units},
        "onnx": {"opset": args.onnx_opset, "lut_encoding": args.onnx_lut_encoding},
        "executorch": {"delegate": args.executorch_delegate, "requantize": args.executorch_requantize,
                       "kernels": getattr(args, "executorch_kernels", "none")},
        "tflite": {"requantize": args.tflite_requantize},
    }


def cmd_export(args) -> int:
    from edgekit.exporters import get_exporter
    from edgekit.exporters.pipeline import export_spec

    targets = args.target or list(TARGETS)
    opts = export_options(args)
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


def cmd_bench(args) -> int:
    from edgekit.inputspec import parse_dims, parse_input

    specs = [parse_input(t) for t in args.input or []]
    # --dim sizes generated inputs: without --input it means random data (reference inputs have fixed shapes)
    chosen = {"inputs": "spec" if specs else ("random" if args.dim else args.inputs), "input_spec": specs or None,
              "dims": parse_dims(args.dim) or None}
    llm = {k: v for k, v in (("prompt_tokens", args.prompt_tokens), ("new_tokens", args.new_tokens)) if v is not None}
    if args.server:
        from edgekit.client import bench_remote

        pairs = bench_remote(args.server, args.artifact, token=args.token, runs=args.runs, warmup=args.warmup,
                             threads=args.threads, min_seconds=args.min_seconds, **chosen, **llm)
        print(bench_table([r for _, r in pairs], servers=[s for s, _ in pairs]))
        _note_default_fills([r for _, r in pairs])
        _write_html(args.html, [{**r, "artifact": args.artifact[i // len(args.server)]} for i, (_, r) in
                                enumerate(pairs)], [s for s, _ in pairs])
        if args.json:
            Path(args.json).write_text(json.dumps([{"server": s, **r} for s, r in pairs], indent=2))
        return 0
    from edgekit.bench import benchmark
    from edgekit.progress import progress

    results = []
    for path in progress(args.artifact, desc="benchmark", enabled=len(args.artifact) > 1):
        results.append(benchmark(path, runs=args.runs, warmup=args.warmup, threads=args.threads,
                                 min_seconds=args.min_seconds, **chosen, **llm))
    print(bench_table(results))
    _note_default_fills(results)
    _write_html(args.html, [{**r, "artifact": str(p)} for r, p in zip(results, args.artifact)])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _write_html(path: str | None, results: list[dict], servers: list[str] | None = None) -> None:
    if path:
        from edgekit.server.dashboard import results_page  # plain HTML + SVG: no server dependency

        Path(path).write_text(results_page(results, servers))


def _note_default_fills(results: list[dict]) -> None:
    """Integers filled from the default range are said out loud: a rate or a length may need a real value."""
    seen = set()
    for r in results:
        for t in r.get("inputs_used") or []:
            if "(default)" in t.get("fill", "") and t["name"] not in seen:
                seen.add(t["name"])
                print(f"note: {t['dtype']} input '{t['name']}' {t['shape']} was filled with {t['fill']}; give it a "
                      f"value with --input {t['name']}:{t['dtype']}:=VALUE or a range with :LOW..HIGH",
                      file=sys.stderr)


def bench_table(results: list[dict], servers: list[str] | None = None) -> str:
    servers = servers or [None] * len(results)
    llms = [(s, r) for s, r in zip(servers, results) if r.get("kind") == "llm"]
    others = [(s, r) for s, r in zip(servers, results) if r.get("kind") != "llm"]
    parts = [_bench_table([r for _, r in others], [s for s, _ in others] if others and others[0][0] else None)] \
        if others else []
    if llms:
        from edgekit.report import llm_bench_table
        parts.append(llm_bench_table([r for _, r in llms], [s for s, _ in llms] if llms[0][0] else None))
    return "\n\n".join(parts)


def _bench_table(results: list[dict], servers: list[str] | None = None) -> str:
    rows = [[r["target"], r["runtime"], r["threads"], human_bytes(r["model_bytes"]), r["latency"]["runs"],
             latency_cell(r, "min_ms"), latency_cell(r, "p50_ms"), latency_cell(r, "p90_ms"),
             latency_cell(r, "p99_ms"), f"{r['latency']['cv']:.3f}", f"{r['cold_start_ms']:.0f}",
             f"{r['peak_rss_mb']:.0f}"] for r in results]
    note = "\n(~ marks a percentile estimated from too few runs: p90 needs >= 64, p99 >= 662)"
    headers = ["target", "runtime", "threads", "bytes", "runs", "min ms", "p50 ms", "p90 ms", "p99 ms", "cv",
               "cold start ms", "peak RSS MiB"]
    if servers:
        return table(["server", *headers], [[s, *row] for s, row in zip(servers, rows)]) + note
    return table(headers, rows) + note


def cmd_serve(args) -> int:
    from edgekit.server.cli import serve_from_args

    return serve_from_args(args)


def cmd_generate(args) -> int:
    from edgekit.generate import open_llm

    options = {} if args.first_threshold is None else {"threshold": args.first_threshold}
    llm = open_llm(args.artifact, threads=args.threads, **options)
    r = llm.generate(args.prompt, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                     top_k=args.top_k, seed=args.seed)
    print(args.prompt + r.text)
    if r.skipped_layers is not None:
        print(f"\n[FiRST: skipped layers {r.skipped_layers or 'none'} of {llm.n_layers} "
              f"(threshold {llm.threshold})]", file=sys.stderr)
    print(f"\n[{r.prompt_tokens} prompt tokens: {r.prefill_tokens_per_s:.1f} tok/s prefill; "
          f"{len(r.new_tokens)} new tokens: {r.decode_tokens_per_s:.1f} tok/s decode; "
          f"stopped on {r.stop_reason}; {llm.manifest['target']}, {args.threads} thread(s)]", file=sys.stderr)
    return 0


def cmd_export_llm(args) -> int:
    from edgekit.exporters.llm import export_llm, llm_compression_section
    from edgekit.exporters.llm_compress import is_clustered, load_clustered
    from edgekit.model_zoo.llama import load_hf_checkpoint
    from edgekit.model_zoo.text import encode_split, load_tokenizer

    ckpt = Path(args.checkpoint)
    tokenizer_file = ckpt / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise EdgekitError("no_tokenizer", f"{ckpt} has no tokenizer.json",
                           fix="save the tokenizer (tokenizers' Tokenizer.save) next to the checkpoint")
    extra = None
    if is_clustered(ckpt):  # eDKM indices + tables: exported decompressed to fp32, the ledger says so
        model = load_clustered(ckpt)
        extra = {"compression": llm_compression_section(model)}
        s = extra["compression"]["summary"]
        print(f"  clustered linear weights: {s['expected_bytes']:,} B (indices + tables) vs {s['dense_bytes']:,} B "
              f"fp32 ({s['expected_bytes'] / s['dense_bytes']:.3f}x); the artifact stores them dense fp32",
              file=sys.stderr)
    else:
        model = load_hf_checkpoint(ckpt)
    tokens = encode_split(load_tokenizer(tokenizer_file), "val")
    routers = None
    if args.first:
        from edgekit.model_zoo.first import load_routers
        routers = load_routers(args.first, threshold=args.first_threshold)
    rows = []
    for target in args.target or ["executorch"]:
        print(f"  {target}: converting and checking parity ...", file=sys.stderr, flush=True)
        if routers is not None:
            if args.weights != "fp32":
                raise EdgekitError("first_weights_unsupported", "--first exports fp32 weights only",
                                   fix="drop --weights, or export without --first")
            from edgekit.exporters.llm_first import export_first_llm
            art = export_first_llm(model, routers, tokenizer_file, Path(args.out) / ckpt.name / f"{target}-first",
                                   name=ckpt.name, target=target, prefill_len=args.prefill_len,
                                   calibration_tokens=tokens, parity_tokens=tokens)
        else:
            art = export_llm(model, tokenizer_file, target, Path(args.out) / ckpt.name / target, name=ckpt.name,
                             prefill_len=args.prefill_len, parity_tokens=tokens, manifest_extra=extra,
                             weights=args.weights, group_size=args.group_size)
        rows.append([target, human_bytes(sum(f["bytes"] for f in art.manifest["files"])),
                     parity_cell(art.manifest["parity"]), str(art.path)])
    print(table(["target", "bytes", "parity", "artifact"], rows))
    return 0


def cmd_compress_llm(args) -> int:
    from edgekit.exporters.llm_compress import FinetuneConfig, Job, compress_llm

    ckpt = Path(args.checkpoint)
    ft = FinetuneConfig(steps=args.steps, batch=args.batch, seq_len=args.seq_len, lr=args.lr, nproc=args.nproc,
                        backend=args.backend, threads=args.threads)
    r = compress_llm(Job(str(ckpt), args.out, args.bits, ft))
    if not r:  # a torchrun rank other than 0
        return 0
    s = r["size"]
    ranks = r["ranks"]
    print(table(["", "value"], [
        ["perplexity fp32 -> eDKM", f"{r['fp32_perplexity']:.2f} -> {r['perplexity']:.2f} "
                                    f"({r['perplexity'] / r['fp32_perplexity']:.3f}x; k-means without "
                                    f"fine-tuning {r['ptq_perplexity']:.2f})"],
        ["linear weights", f"{s['linear_clustered_bytes']:,} B (indices {s['indices_bytes']:,} + tables "
                           f"{s['table_bytes']:,}) vs {s['linear_fp32_bytes']:,} B fp32 = {s['ratio']:.3f}x"],
        ["DKM saved for backward / rank", human_bytes(max(x["dkm_saved_bytes_peak"] for x in ranks))],
        ["peak RSS / rank", human_bytes(max(x["peak_rss_bytes"] for x in ranks))],
        ["processes x steps", f"{len(ranks)} x {ft.steps} ({max(x['seconds'] for x in ranks):.0f} s)"],
        ["clustered checkpoint", r["clustered_checkpoint"]],
    ]))
    return 0


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
