"""`edgekit train`: a zoo classifier on digits, or a zoo LLM (llama_*) on pydoc text, resumably, into the
checkpoint the LLM commands start from."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub) -> None:
    tr = sub.add_parser("train", help="train a zoo model: a classifier on digits, or an LLM (llama_*) on pydoc text; "
                        "safetensors checkpoint, held-out accuracy / perplexity")
    tr.add_argument("model", help="a zoo name (see `edgekit zoo list`)")
    tr.add_argument("--epochs", type=int, default=15)
    tr.add_argument("--batch-size", type=int, default=None, help="default 64 (classifiers) / 8 sequences (LLMs)")
    tr.add_argument("--lr", type=float, default=None, help="default 2e-3 (classifiers) / 3e-3 (LLMs)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--steps", type=int, default=500, help="LLMs: optimizer steps of batch x 128 tokens")
    tr.add_argument("--restart", action="store_true", help="LLMs: ignore a saved train_state and start over")
    tr.add_argument("--out", default=None, help="classifiers: OUT/<model>.safetensors (default out/train); "
                    "LLMs: the checkpoint folder OUT/<model> (default out/llm)")
    tr.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from edgekit.model_zoo import get_spec

    if get_spec(args.model).family == "llama":
        return cmd_train_llm(args)
    from edgekit.model_zoo.train import TrainConfig, train

    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size or 64, lr=args.lr or 2e-3, seed=args.seed)
    result = train(args.model, config, out_dir=args.out or "out/train")
    print(f"{result.model_name}: held-out accuracy {result.accuracy * 100:.2f}% "
          f"({result.params:,} parameters, {result.seconds:.0f} s) -> {result.checkpoint}")
    return 0


def cmd_train_llm(args) -> int:
    """`edgekit train llama_*`: train (or resume) into OUT/<model>; a finished checkpoint is kept, not retrained."""
    import torch

    from edgekit.model_zoo.llm_train import train_zoo_llm

    out = Path(args.out or "out/llm") / args.model
    torch.set_num_threads(1)  # the figures in docs/llm.md: 1 thread
    r, trained = train_zoo_llm(
        args.model, args.out or "out/llm", steps=args.steps, batch=args.batch_size or 8, lr=args.lr or 3e-3,
        seed=args.seed, restart=args.restart,
        on_start=lambda d: print(f"training {args.model} for {args.steps} steps into {d} (resumable: Ctrl-C, then "
                                 "run again)", file=sys.stderr))
    if not trained:
        print(f"{args.model}: already trained ({r['steps']} steps, validation perplexity {r['val_perplexity']:.2f}) "
              f"-> {out}  (pass --restart to train again)")
        return 0
    resumed = f", resumed at step {r['resumed_at']}" if r["resumed_at"] else ""
    print(f"{args.model}: validation perplexity {r['val_perplexity']:.2f} ({r['parameters']:,} parameters, "
          f"{r['steps']} steps of {r['batch']} x {r['seq_len']} tokens, {r['train_seconds']:.0f} s{resumed}) -> {out}")
    return 0
