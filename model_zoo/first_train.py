"""FiRST training on a frozen base: stage 1 routers, stage 2 LoRA with the routers frozen; evaluation.

Both stages distil the full base model (KL(full || routed) per token) rather than fit
the text: the base is only trained for 500 steps, so more next-token training would
improve it with or without skipping and hide the cost of skipping. Distillation
measures, and recovers, only what skipping loses.

    >>> from edgekit.model_zoo.first_train import train_first
    >>> train_first("out/llm/llama_pydoc", "out/first/f50", target_skip=0.5)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgekit.model_zoo.first import Routers, add_lora, merge_lora, routed_logits, save_routers
from edgekit.model_zoo.llama import Llama, load_hf_checkpoint, save_hf_checkpoint
from edgekit.model_zoo.llm_train import batches
from edgekit.model_zoo.loop import train_steps


def _kl(student_logits, teacher_logits) -> torch.Tensor:
    """Mean over tokens of KL(teacher || student)."""
    t = F.log_softmax(teacher_logits, -1)
    return (t.exp() * (t - F.log_softmax(student_logits, -1))).sum(-1).mean()


def train_routers(model: Llama, routers: Routers, train_ids: np.ndarray, *, target_skip: float, steps: int = 150,
                  batch: int = 8, seq_len: int = 128, lr: float = 2e-2, lam: float = 4.0,
                  prompt_lens: tuple[int, int] = (8, 64), seed: int = 0, show_progress: bool = True) -> list[dict]:
    """Stage 1: routers only, base frozen. Loss KL + lam * (kept fraction - (1 - target_skip))^2, straight-through."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.requires_grad_(False)
    routers.train()
    opt = torch.optim.Adam(routers.parameters(), lr=lr)
    data = batches(train_ids, seq_len, batch, rng)
    log, last = [], {}

    def loss_fn(step: int):
        x, _ = next(data)
        prompt = int(rng.integers(prompt_lens[0], prompt_lens[1] + 1))
        with torch.no_grad():
            teacher = model.logits_full(x)
        logits, last["probs"], last["gates"] = routed_logits(model, routers, x, prompt, gate="st")
        last["kl"] = _kl(logits, teacher)
        budget = (last["gates"].mean() - (1.0 - target_skip)) ** 2
        return last["kl"] + lam * budget

    def after(step: int, _loss) -> None:
        if step % 10 == 0 or step == steps - 1:
            log.append({"step": step, "kl": last["kl"].item(), "kept": last["gates"].mean().item(),
                        "p_mean_per_layer": [round(v, 3) for v in last["probs"].mean(0).tolist()]})

    train_steps(range(steps), loss_fn, opt, after=after, desc=f"routers (skip {target_skip:.2f})",
                show_progress=show_progress)
    routers.eval()
    for p in routers.parameters():
        p.requires_grad_(False)
    return log


def train_lora(model: Llama, routers: Routers, teacher: Llama, train_ids: np.ndarray, *, steps: int = 150,
               batch: int = 8, seq_len: int = 128, lr: float = 2e-3, rank: int = 8, alpha: float = 16.0,
               prompt_lens: tuple[int, int] = (8, 64), seed: int = 1, show_progress: bool = True) -> list[dict]:
    """Stage 2: LoRA on every block linear, routers frozen (hard decisions), distilling the full teacher.

    The routers decide on the adapted model's own hidden states, as they will at inference.
    Merges the adapters into ``model`` in place at the end.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    add_lora(model, rank=rank, alpha=alpha)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    data = batches(train_ids, seq_len, batch, rng)
    model.train()
    log, last = [], {}

    def loss_fn(step: int):
        x, _ = next(data)
        prompt = int(rng.integers(prompt_lens[0], prompt_lens[1] + 1))
        with torch.no_grad():
            target = teacher.logits_full(x)
        logits, _, last["gates"] = routed_logits(model, routers, x, prompt, gate="hard")
        return _kl(logits, target)

    def after(step: int, loss) -> None:
        if step % 10 == 0 or step == steps - 1:
            log.append({"step": step, "kl": loss.item(), "kept": last["gates"].mean().item()})

    train_steps(range(steps), loss_fn, opt, sched=sched, clip_norm=1.0, after=after, desc="lora",
                show_progress=show_progress)
    merge_lora(model)
    model.eval()
    return log


@torch.no_grad()
def evaluate(model: Llama, routers: Routers | None, ids: np.ndarray, *, seq_len: int = 128, prompt_len: int = 16,
             max_windows: int = 64) -> dict:
    """Perplexity over non-overlapping windows (as llm_train.perplexity) with each window routed from its
    first ``prompt_len`` tokens; the skip fraction and the skip sets the routers chose."""
    model.eval()
    losses, sets = [], Counter()
    n = min(max_windows, (len(ids) - 1) // seq_len)
    for w in range(n):
        chunk = torch.from_numpy(ids[w * seq_len: (w + 1) * seq_len + 1])[None]
        if routers is None:
            logits, keep = model.logits_full(chunk[:, :-1]), torch.ones(1, model.cfg.n_layers)
        else:
            logits, _, keep = routed_logits(model, routers, chunk[:, :-1], prompt_len, gate="hard")
        losses.append(F.cross_entropy(logits[0], chunk[0, 1:]).item())
        sets[tuple(i for i in range(model.cfg.n_layers) if keep[0, i] < 0.5)] += 1
    skipped = sum(len(s) * c for s, c in sets.items()) / (n * model.cfg.n_layers)
    return {"perplexity": float(math.exp(np.mean(losses))), "skip_fraction": skipped, "windows": n,
            "skip_sets": {",".join(map(str, s)) or "-": c for s, c in sets.most_common()}}


def train_first(checkpoint: str | Path, out_dir: str | Path, *, target_skip: float, router_steps: int = 150,
                lora_steps: int = 150, rank: int = 8, lam: float = 4.0, seed: int = 0,
                show_progress: bool = True) -> dict:
    """Routers + LoRA for one target skip fraction. Writes a merged HF checkpoint, tokenizer.json,
    routers/first_routers.safetensors and first_result.json to out_dir."""
    from edgekit.model_zoo.text import encode_split, load_tokenizer

    checkpoint, out = Path(checkpoint), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer(checkpoint / "tokenizer.json")
    train_ids, val_ids = encode_split(tok, "train"), encode_split(tok, "val")
    base = load_hf_checkpoint(checkpoint, max_seq_len=256)
    model = copy.deepcopy(base)
    routers = Routers.for_model(model)
    t0 = time.time()
    router_log = train_routers(model, routers, train_ids, target_skip=target_skip, steps=router_steps, lam=lam,
                               seed=seed, show_progress=show_progress)
    t1 = time.time()
    routed = evaluate(model, routers, val_ids)
    lora_log = train_lora(model, routers, base, train_ids, steps=lora_steps, rank=rank, seed=seed + 1,
                          show_progress=show_progress)
    t2 = time.time()
    result = {"target_skip": target_skip, "router_steps": router_steps, "lora_steps": lora_steps, "lora_rank": rank,
              "lambda": lam, "router_seconds": t1 - t0, "lora_seconds": t2 - t1,
              "base": evaluate(base, None, val_ids), "routed_before_lora": routed,
              "first": evaluate(model, routers, val_ids), "router_log": router_log, "lora_log": lora_log}
    save_hf_checkpoint(model, out)
    shutil.copy(checkpoint / "tokenizer.json", out / "tokenizer.json")
    (out / "routers").mkdir(exist_ok=True)  # not beside model.safetensors: HF loaders read every *.safetensors there
    save_routers(routers, out / "routers" / "first_routers.safetensors", extra={"target_skip": target_skip,
                                                                     "base_checkpoint": str(checkpoint)})
    (out / "first_result.json").write_text(json.dumps(result, indent=2))
    return result
