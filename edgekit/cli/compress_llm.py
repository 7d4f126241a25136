"""`edgekit compress-llm`: eDKM-cluster an LLM checkpoint's linear layers while fine-tuning."""

from __future__ import annotations

from pathlib import Path

from edgekit.report import human_bytes, table


def add_parser(sub) -> None:
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
