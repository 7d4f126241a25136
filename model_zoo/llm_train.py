"""Train the Llama-style decoder on pydoc text: fixed seed, progress bar, held-out perplexity, safetensors."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from edgekit.model_zoo.llama import Llama, LlamaConfig, save_hf_checkpoint
from edgekit.model_zoo.llm_train_state import STATE_DIR, TrainState
from edgekit.model_zoo.text import encode_split, load_tokenizer, train_tokenizer
from edgekit.model_zoo.loop import train_steps


def batches(ids: np.ndarray, seq_len: int, batch: int, rng: np.random.Generator):
    while True:
        starts = rng.integers(0, len(ids) - seq_len - 1, size=batch)
        x = np.stack([ids[s: s + seq_len + 1] for s in starts])
        yield torch.from_numpy(x[:, :-1]), torch.from_numpy(x[:, 1:])


def perplexity(model: Llama, ids: np.ndarray, seq_len: int, max_windows: int = 64) -> float:
    """exp(mean next-token loss) over non-overlapping windows of the held-out text."""
    model.eval()
    losses = []
    with torch.no_grad():
        for w in range(min(max_windows, (len(ids) - 1) // seq_len)):
            chunk = torch.from_numpy(ids[w * seq_len: (w + 1) * seq_len + 1])[None]
            logits = full_logits(model, chunk[:, :-1])
            losses.append(torch.nn.functional.cross_entropy(logits[0], chunk[0, 1:]).item())
    return float(math.exp(np.mean(losses)))


def full_logits(model: Llama, tokens: torch.Tensor) -> torch.Tensor:
    """Training forward: the same cached step the artifact runs, from position 0, whole batch at once."""
    return model.logits_full(tokens)


def train_llm(cfg: LlamaConfig, out_dir: str | Path, *, steps: int = 600, batch: int = 16, seq_len: int = 128,
              lr: float = 3e-3, seed: int = 0, show_progress: bool = True, save_every: int = 50,
              resume: bool = True, on_step: Callable[[int, float], None] | None = None) -> dict:
    """Train on the pydoc text and write a Hugging Face-format checkpoint (+ tokenizer.json, train_result.json).

    Resumable: every ``save_every`` steps, and when interrupted (Ctrl-C), the model, AdamW and
    schedule state and the data sampler's RNG go to ``out_dir/train_state`` (safetensors + json);
    a later call with the same options continues from there and ends with the same weights as an
    uninterrupted run. ``on_step(step_done, loss)`` is called after every step.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    options = {"config": cfg.__dict__, "steps": steps, "batch": batch, "seq_len": seq_len, "lr": lr, "seed": seed}
    model = Llama(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    warm = max(1, steps // 20)  # linear warmup, then cosine decay to 10%
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * (
        0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, s / steps)))))
    state = TrainState(out / STATE_DIR)
    first = state.load(options, model, opt, sched, rng) if resume and state.exists() else 0
    if first:
        tok = load_tokenizer(out / "tokenizer.json")
    else:
        tok = train_tokenizer(cfg.vocab_size)
        tok.save(str(out / "tokenizer.json"))
    train_ids, val_ids = encode_split(tok, "train"), encode_split(tok, "val")
    data = batches(train_ids, seq_len, batch, rng)
    start = time.time()
    model.train()
    done, sampler, updating = first, rng.bit_generator.state, False

    def loss_fn(_step: int):
        nonlocal updating
        x, y = next(data)
        loss = torch.nn.functional.cross_entropy(full_logits(model, x).reshape(-1, cfg.vocab_size), y.reshape(-1))
        updating = True  # an interruption from here to the end of the step leaves no consistent state
        return loss

    def after(step: int, loss) -> None:
        nonlocal done, sampler, updating
        done, sampler, updating = step + 1, rng.bit_generator.state, False
        if save_every and done % save_every == 0 and done < steps:
            state.save(options, done, model, opt, sched, sampler)
        if on_step:
            on_step(done, float(loss.item()))

    try:
        train_steps(range(first, steps), loss_fn, opt, sched=sched, clip_norm=1.0, after=after, postfix_every=20,
                    desc="train llm" + (f" (resumed at {first})" if first else ""), show_progress=show_progress)
    except BaseException:
        if done > first and not updating:  # keep what this run did: the next call resumes here
            state.save(options, done, model, opt, sched, sampler)
        raise
    train_s = time.time() - start
    model.eval()
    result = {**options, "train_seconds": train_s, "resumed_at": first or None,
              "train_tokens": int(len(train_ids)), "val_tokens": int(len(val_ids)),
              "val_perplexity": perplexity(model, val_ids, seq_len),
              "parameters": int(sum(p.numel() for p in model.parameters()))}
    save_hf_checkpoint(model, out)
    (out / "train_result.json").write_text(json.dumps(result, indent=2))
    state.remove()
    return result



def train_zoo_llm(name: str, out_root: str | Path = "out/llm", *, steps: int = 500, batch: int = 8,
                  lr: float = 3e-3, seed: int = 0, restart: bool = False, show_progress: bool = True,
                  on_start: Callable[[Path], None] | None = None) -> tuple[dict, bool]:
    """Train zoo LLM ``name`` (llama_*) into ``out_root/name``, resuming its saved train_state; what
    `edgekit train llama_*` runs. A finished checkpoint is kept, not retrained, unless ``restart``.
    Returns (train_result, whether it trained now); ``on_start(out_dir)`` runs before training."""
    from edgekit.errors import EdgekitError
    from edgekit.model_zoo.llama import cfgs

    out = Path(out_root) / name
    done = out / "train_result.json"
    if done.exists() and not restart:
        return json.loads(done.read_text()), False
    if steps < 1:
        raise EdgekitError("bad_config", f"train steps={steps} must be >= 1", fix="pass --steps 1 or more")
    if restart:
        TrainState(out / STATE_DIR).remove()
        done.unlink(missing_ok=True)
    if on_start:
        on_start(out)
    return train_llm(cfgs[name], out, steps=steps, batch=batch, seq_len=128, lr=lr, seed=seed,
                     show_progress=show_progress), True
