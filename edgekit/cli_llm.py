"""`edgekit train` for the zoo's LLMs (llama_*): resumable training into the checkpoint the LLM commands start from."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgekit.errors import EdgekitError


def cmd_train_llm(args) -> int:
    """`edgekit train llama_*`: train (or resume) into OUT/<model>; a finished checkpoint is kept, not retrained."""
    import torch

    from edgekit.model_zoo.llama import cfgs
    from edgekit.model_zoo.llm_train import train_llm

    out = Path(args.out or "out/llm") / args.model
    done = out / "train_result.json"
    if done.exists() and not args.restart:
        r = json.loads(done.read_text())
        print(f"{args.model}: already trained ({r['steps']} steps, validation perplexity {r['val_perplexity']:.2f}) "
              f"-> {out}  (pass --restart to train again)")
        return 0
    if args.steps < 1:
        raise EdgekitError("bad_config", f"train steps={args.steps} must be >= 1", fix="pass --steps 1 or more")
    if args.restart:
        from edgekit.model_zoo.llm_train_state import STATE_DIR, TrainState
        TrainState(out / STATE_DIR).remove()
        done.unlink(missing_ok=True)
    torch.set_num_threads(1)  # the figures in docs/llm.md: 1 thread
    print(f"training {args.model} for {args.steps} steps into {out} (resumable: Ctrl-C, then run again)",
          file=sys.stderr)
    r = train_llm(cfgs[args.model], out, steps=args.steps, batch=args.batch_size or 8, seq_len=128,
                  lr=args.lr or 3e-3, seed=args.seed)
    resumed = f", resumed at step {r['resumed_at']}" if r["resumed_at"] else ""
    print(f"{args.model}: validation perplexity {r['val_perplexity']:.2f} ({r['parameters']:,} parameters, "
          f"{r['steps']} steps of {r['batch']} x {r['seq_len']} tokens, {r['train_seconds']:.0f} s{resumed}) -> {out}")
    return 0
