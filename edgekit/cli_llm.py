"""`edgekit generate`, `export-llm` and `compress-llm`: the LLM commands."""

from __future__ import annotations

import sys
from pathlib import Path

from edgekit import TARGETS
from edgekit.errors import EdgekitError
from edgekit.report import human_bytes, parity_cell, table


def add_llm_parsers(sub) -> None:
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
    el.add_argument("--target", action="append", choices=TARGETS,
                    help="repeatable; default: executorch (coreml: one iOS18 multifunction .mlpackage, fp16)")
    el.add_argument("--out", default="out")
    el.add_argument("--prefill-len", type=int, default=16)
    el.add_argument("--weights", default="fp32", choices=("fp32", "int4", "int8"),
                    help="linear weights in the .pte: int4 (groups) / int8 (per channel) with int8 dynamic "
                    "activations on XNNPACK; executorch only")
    el.add_argument("--group-size", type=int, default=32,
                    help="int4: weights per scale (default 32; 0 = one scale per output channel)")
    el.add_argument("--executorch-kernels", default="none", choices=("none", "edgekit"),
                    help="edgekit: clustered / shift linear layers (eDKM checkpoints, --recipe) stay at their bit "
                    "width in the .pte and run on edgekit's native kernels (needs `make native`)")
    el.add_argument("--recipe", default=None,
                    help="post-training compression of every linear layer before export: palettize2/3/4 (k-means "
                    "tables), palettize4_grouped, shift3/4, sparse24, or a recipe .json/.yaml")
    el.add_argument("--exclude", default=None, help="--recipe: leave layers matching this regex dense (e.g. lm_head)")
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
        stored = ("packed, on edgekit's kernels" if args.executorch_kernels == "edgekit"
                  else "dense fp32 (--executorch-kernels edgekit keeps them packed)")
        print(f"  clustered linear weights: {s['expected_bytes']:,} B (indices + tables) vs {s['dense_bytes']:,} B "
              f"fp32 ({s['expected_bytes'] / s['dense_bytes']:.3f}x); the artifact stores them {stored}",
              file=sys.stderr)
    else:
        model = load_hf_checkpoint(ckpt)
    if args.recipe:
        if is_clustered(ckpt):
            raise EdgekitError("bad_option", f"{ckpt} is already clustered (eDKM); --recipe {args.recipe} would "
                               "cluster it again", fix="drop --recipe, or export the fp32 checkpoint with it")
        from edgekit.exporters.llm_kernels import apply_recipe

        model, _ = apply_recipe(model, args.recipe, args.exclude)
    tokens = encode_split(load_tokenizer(tokenizer_file), "val")
    routers = None
    if args.first:
        from edgekit.model_zoo.first import load_routers
        routers = load_routers(args.first, threshold=args.first_threshold)
    rows = []
    for target in args.target or ["executorch"]:
        print(f"  {target}: converting and checking parity ...", file=sys.stderr, flush=True)
        if routers is not None:
            if args.weights != "fp32" or args.executorch_kernels != "none" or args.recipe:
                raise EdgekitError("first_weights_unsupported", "--first exports fp32 weights only",
                                   fix="drop --weights / --executorch-kernels / --recipe, or export without --first")
            from edgekit.exporters.llm_first import export_first_llm
            art = export_first_llm(model, routers, tokenizer_file, Path(args.out) / ckpt.name / f"{target}-first",
                                   name=ckpt.name, target=target, prefill_len=args.prefill_len,
                                   calibration_tokens=tokens, parity_tokens=tokens)
        else:
            art = export_llm(model, tokenizer_file, target, Path(args.out) / ckpt.name / target, name=ckpt.name,
                             prefill_len=args.prefill_len, parity_tokens=tokens, manifest_extra=extra,
                             weights=args.weights, group_size=args.group_size,
                             kernels=args.executorch_kernels)
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
