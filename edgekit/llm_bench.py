"""Timing an LLM artifact: time to first token, prefill and decode tokens/s, per-token decode latency.

    >>> from edgekit.bench import benchmark
    >>> r = benchmark("out/llm/llama_pydoc/executorch", prompt_tokens=16, new_tokens=128)   # doctest: +SKIP
    >>> r["llm"]["decode_tokens_per_s"], r["latency"]["p50_ms"]                             # doctest: +SKIP

One generation round prefills a ``prompt_tokens`` prompt (in the artifact's prefill
chunks) and then teacher-forces ``new_tokens`` decode steps, each timed on its own:
the timed unit of an LLM benchmark is one decode step, so ``result["latency"]`` is
the per-token decode latency and ``runs`` counts decode steps. Rounds repeat until
at least ``runs`` steps and ``min_seconds`` have been timed, after warm-up rounds
(``warmup`` steps and ``warmup_seconds``). Token ids are seeded random ids: speed
does not depend on their values. Torch-free (numpy and the artifact's runtime).
"""

from __future__ import annotations

import time

import numpy as np

from edgekit.errors import EdgekitError

DEFAULT_PROMPT_TOKENS = 16
DEFAULT_NEW_TOKENS = 128


def time_generation(session, tokens: np.ndarray, prompt_tokens: int) -> tuple[float, list[float]]:
    """Prefill ``tokens[:prompt_tokens]``, then decode the rest teacher-forced, one token a step.

    Returns (seconds until the logits of the first new token, seconds of each decode step).
    Works for plain and FiRST sessions (their prompt and decode hooks).
    """
    t0 = time.perf_counter()
    _, state = session._prefill_prompt(np.asarray(tokens[:prompt_tokens], np.int64))
    ttft = time.perf_counter() - t0
    times = []
    for i, tok in enumerate(tokens[prompt_tokens:]):
        t0 = time.perf_counter()
        session._decode_state(int(tok), prompt_tokens + i, state)
        times.append(time.perf_counter() - t0)
    return ttft, times


def decode_rate_artifact(session, tokens: np.ndarray, prefill: int) -> float:
    """Decode tokens/s of one round: ``len(tokens) - prefill`` teacher-forced steps after a prefill."""
    _, times = time_generation(session, tokens, prefill)
    return len(times) / sum(times)


def check_lengths(prompt_tokens: int, new_tokens: int, max_seq_len: int) -> None:
    if prompt_tokens < 1 or new_tokens < 1:
        raise EdgekitError("bad_option", f"prompt_tokens ({prompt_tokens}) and new_tokens ({new_tokens}) must be "
                           ">= 1", fix="pass --prompt-tokens 16 --new-tokens 128")
    if prompt_tokens + new_tokens > max_seq_len:
        raise EdgekitError("bad_option", f"prompt_tokens ({prompt_tokens}) + new_tokens ({new_tokens}) exceeds the "
                           f"model's context of {max_seq_len}", fix="lower --prompt-tokens or --new-tokens",
                           details={"max_seq_len": max_seq_len})


def bench_llm(session, cfg: dict, phase=lambda name: None) -> dict:
    """Run the timing rounds on an open LLM session; the ``llm`` and ``latency`` parts of a result."""
    from edgekit.stats import summarize

    p = int(cfg.get("prompt_tokens") or DEFAULT_PROMPT_TOKENS)
    n = int(cfg.get("new_tokens") or DEFAULT_NEW_TOKENS)
    check_lengths(p, n, session.max_seq_len)
    vocab = int(session.manifest["model"]["config"]["vocab_size"])
    tokens = np.random.default_rng(cfg.get("seed", 0)).integers(0, vocab, size=p + n).astype(np.int64)

    phase("first_run")
    first_ttft, first_steps = time_generation(session, tokens, p)
    phase("warmup")
    warm_start, warm_steps = time.perf_counter(), len(first_steps)
    while warm_steps < cfg.get("warmup", 0) or time.perf_counter() - warm_start < cfg.get("warmup_seconds", 0):
        warm_steps += len(time_generation(session, tokens, p)[1])

    phase("timed_runs")
    ttfts, rounds, steps = [], [], []
    max_steps = int(cfg.get("max_runs", 100_000))
    timed_start = time.perf_counter()
    while (len(steps) < cfg.get("runs", 1) or time.perf_counter() - timed_start < cfg.get("min_seconds", 0)) \
            and len(steps) < max_steps:
        ttft, times = time_generation(session, tokens, p)
        ttfts.append(ttft)
        rounds.append(sum(times))
        steps.extend(times)
    decode_s = sum(rounds)
    return {
        "first_run_ms": (first_ttft + sum(first_steps)) * 1e3,  # the first round: prefill + every decode step
        "warmup_runs": warm_steps,
        "latency": summarize(steps),  # one decode step
        "samples_s": steps,
        "llm": {
            "prompt_tokens": p, "new_tokens": n, "rounds": len(rounds), "timed_tokens": len(steps),
            "ttft_ms": summarize(ttfts),
            "prefill_tokens_per_s": p / float(np.median(ttfts)),
            "decode_tokens_per_s": len(steps) / decode_s,
            "decode_tokens_per_s_p50": 1e3 / float(np.percentile(np.asarray(steps) * 1e3, 50)),
            "decode_round_tokens_per_s": {"median": n / float(np.median(rounds)),
                                          "min": n / max(rounds), "max": n / min(rounds)},
            "kv_cache": session.manifest.get("kv_cache", "explicit"),
            "first": "first" in session.manifest,
            "token_ids": "random",
        },
    }

