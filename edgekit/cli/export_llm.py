"""`edgekit export-llm`: a Llama checkpoint to LLM artifacts (prefill + decode; FiRST with --first).

The steps live in the library (edgekit.exporters.llm_export.export_checkpoint); this module parses and prints.
"""

from __future__ import annotations

import sys

from edgekit.cli.target_flags import add_target_flags, target_options
from edgekit.report import human_bytes, parity_cell, table
from edgekit.targets import LLM, names_with


def add_parser(sub) -> None:
    el = sub.add_parser("export-llm", help="export a Hugging Face-format Llama checkpoint (prefill + decode)")
    el.add_argument("checkpoint", help="directory with config.json, *.safetensors and tokenizer.json")
    el.add_argument("--target", action="append", choices=names_with(LLM),
                    help="repeatable; default: executorch (coreml: one iOS18 multifunction .mlpackage, fp16)")
    el.add_argument("--out", default="out")
    el.add_argument("--prefill-len", type=int, default=16)
    el.add_argument("--weights", default="fp32", choices=("fp32", "int4", "int8"),
                    help="linear weights in the .pte: int4 (groups) / int8 (per channel) with int8 dynamic "
                    "activations on XNNPACK; executorch only")
    el.add_argument("--group-size", type=int, default=32,
                    help="int4: weights per scale (default 32; 0 = one scale per output channel)")
    el.add_argument("--executorch-kernels", default="none", choices=("none", "edgekit", "edgekit-q8"),
                    help="edgekit: clustered, shift and 2:4-sparse linear layers (eDKM checkpoints, --recipe) stay at their bit "
                    "width in the .pte and run on edgekit's native kernels (needs `make native`); edgekit-q8: the "
                    "same with int8 activations (one scale per row): faster decode, not exact (opt-in)")
    el.add_argument("--executorch-attention", default="auto", choices=("auto", "graph", "edgekit"),
                    help="edgekit: each layer's attention is one edgekit::attention op that reads only the KV-cache "
                    "positions in use (faster decode; the .pte then needs edgekit's ops library, `make native`); "
                    "graph: the model's own ops, delegated; auto (default): edgekit with --executorch-kernels, "
                    "else graph")
    el.add_argument("--recipe", default=None,
                    help="post-training compression of every linear layer before export: palettize2/3/4 (k-means "
                    "tables), palettize4_grouped, shift3/4, sparse24 (2:4 alone: stored dense), sparse24_palettize4 "
                    "(2:4 + 4-bit tables, on edgekit's kernels), or a recipe .json/.yaml")
    el.add_argument("--allow-decompressed", action="store_true",
                    help="keep artifacts that store a clustered checkpoint's (or --recipe's) tables dense fp32 "
                    "(onnx, tflite, executorch without --executorch-kernels edgekit); else compression_lost")
    el.add_argument("--exclude", default=None, help="--recipe: leave layers matching this regex dense (e.g. lm_head)")
    el.add_argument("--first", metavar="ROUTERS", default=None,
                    help="FiRST: a first_routers.safetensors trained for this checkpoint; exports per-layer methods "
                         "+ routers (+ fused decode for the skip sets the routers choose) so skipped layers cost "
                         "nothing (executorch only)")
    el.add_argument("--first-threshold", type=float, default=None, help="FiRST: override the routers' threshold")
    add_target_flags(el, names_with(LLM), llm=True)  # --onnx-opset, --coreml-target, ...: options LLMs take
    el.set_defaults(func=cmd_export_llm)


def cmd_export_llm(args) -> int:
    from edgekit.exporters.llm_export import export_checkpoint

    artifacts = export_checkpoint(
        args.checkpoint, args.target or ["executorch"], args.out, prefill_len=args.prefill_len, weights=args.weights,
        group_size=args.group_size, kernels=args.executorch_kernels, recipe=args.recipe, exclude=args.exclude,
        first=args.first, first_threshold=args.first_threshold, allow_decompressed=args.allow_decompressed,
        options=target_options(args, names_with(LLM), llm=True), attention=args.executorch_attention,
        on_start=lambda t: print(f"  {t}: converting and checking parity ...", file=sys.stderr, flush=True),
        on_note=lambda text: print(f"  {text}", file=sys.stderr))
    rows = [[target, human_bytes(sum(f["bytes"] for f in art.manifest["files"])), parity_cell(art.manifest["parity"]),
             str(art.path)] for target, art in artifacts.items()]
    print(table(["target", "bytes", "parity", "artifact"], rows))
    return 0
