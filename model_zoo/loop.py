"""The training loop of the zoo: classifiers (train.py), the LLM (llm_train.py) and FiRST (first_train.py).

The caller says how to get a step's loss; the loop does the update (zero grads, backward,
optional gradient clipping over the optimiser's parameters, step, schedule) and the
progress bar. Everything else (data order, resumable state, logging) stays with the caller,
through ``after(step, loss)``.

    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor(4.0))
    >>> opt = torch.optim.SGD([w], lr=0.25)
    >>> train_steps(range(3), lambda step: w ** 2, opt, desc="demo", show_progress=False)
    >>> round(w.item(), 3)
    0.5
"""

from __future__ import annotations

from typing import Callable

import torch

from edgekit.progress import progress


def train_steps(steps: range, loss_fn: Callable[[int], torch.Tensor], opt: torch.optim.Optimizer, *,
                sched=None, clip_norm: float | None = None, desc: str, show_progress: bool = True,
                postfix_every: int | None = None, after: Callable[[int, torch.Tensor], None] | None = None) -> None:
    """For each step: ``loss = loss_fn(step)``, one optimiser update on it, then ``after(step, loss)``.

    ``clip_norm``: clip the gradients of the optimiser's parameters to this total norm first.
    ``postfix_every``: show the loss on the bar every that many steps (None: never).
    """
    params = [p for group in opt.param_groups for p in group["params"]]
    bar = progress(steps, desc=desc, enabled=show_progress, total=len(steps))
    try:
        for step in bar:
            loss = loss_fn(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, clip_norm)
            opt.step()
            if sched is not None:
                sched.step()
            if postfix_every and step % postfix_every == 0 and hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if after is not None:
                after(step, loss)
    finally:
        if hasattr(bar, "close"):
            bar.close()
