"""Torch-free text generation driving an exported LLM artifact (prefill + decode methods).

    >>> from edgekit.generate import LLMSession
    >>> llm = LLMSession("out/pydoc-llama/executorch")                # doctest: +SKIP
    >>> result = llm.generate("The for statement", max_new_tokens=40)  # doctest: +SKIP
    >>> result.text, result.decode_tokens_per_s                        # doctest: +SKIP
    >>> llm = open_llm("out/first/executorch")   # a FiRST artifact too   # doctest: +SKIP

The artifact is opened with ``edgekit.runtime.load``: prefill, decode (and reset,
for an in-place cache) are methods of that one session. Without an in-place cache
the KV cache lives in numpy arrays passed to each call and returned updated.
Prompts longer than the prefill chunk are fed chunk by chunk; the last chunk
is padded, and the padding is harmless because later positions are masked
until a decode step overwrites them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit import runtime
from edgekit.artifact import load_artifact
from edgekit.errors import EdgekitError


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    new_tokens: list[int] = field(default_factory=list)
    prefill_s: float = 0.0
    decode_s: float = 0.0
    stop_reason: str = "length"
    skipped_layers: list[int] | None = None  # FiRST artifacts: the layers the routers skipped for this prompt

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.prompt_tokens / self.prefill_s if self.prefill_s else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        return len(self.new_tokens) / self.decode_s if self.decode_s else 0.0


def open_llm(path: str | Path, threads: int | None = None, **options) -> "LLMSession":
    """The session an LLM artifact needs: LLMSession, or FiRSTSession for a FiRST (layer-skipping) artifact."""
    art = load_artifact(path)
    if "first" in art.manifest:
        from edgekit.first_session import FiRSTSession
        return FiRSTSession(path, threads, **options)
    if options:
        raise EdgekitError("not_first", f"{path} is not a FiRST artifact; options {sorted(options)} do not apply",
                           fix="drop the FiRST options, or export with `edgekit export-llm --first ROUTERS`")
    return LLMSession(path, threads)


class LLMSession:
    def __init__(self, path: str | Path, threads: int | None = None):
        art = load_artifact(path)
        if art.manifest.get("kind") != "edgekit-llm":
            raise EdgekitError("not_an_llm", f"{path} is a {art.manifest.get('kind')} artifact, not an LLM",
                               fix="use edgekit.runtime.load for non-LLM artifacts")
        if "first" in art.manifest and type(self) is LLMSession:
            raise EdgekitError("first_artifact", f"{path} is a FiRST artifact (per-layer methods, routers)",
                               fix="open it with edgekit.generate.open_llm (or FiRSTSession)")
        self.manifest, self.path = art.manifest, art.path
        self.prefill_len = int(self.manifest["options"]["prefill_len"])
        cfg = self.manifest["model"]["config"]
        self.cache_shape = (cfg["n_layers"], 1, cfg["n_kv_heads"], cfg["max_seq_len"], cfg["dim"] // cfg["n_heads"])
        self.max_seq_len = cfg["max_seq_len"]
        # in place: the artifact keeps the cache (methods take tokens and positions only);
        # explicit: the cache travels in and out of every call as numpy arrays
        self.in_place = self.manifest.get("kv_cache") == "in_place"
        # One runtime session for the artifact; each LLM method is one of its methods.
        self.session = runtime.load(art.path, threads=threads)
        self._methods = {m: self.session.method(m).run for m in self._method_names()}
        if self.in_place:
            self._methods["reset"]([np.zeros(1, np.int64)])  # the runtime does not promise zeroed buffers
        self._tokenizer = None

    def _method_names(self) -> tuple[str, ...]:
        return ("prefill", "decode", "reset") if self.in_place else ("prefill", "decode")

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from edgekit.tokenizer import load_tokenizer
            self._tokenizer = load_tokenizer(self.path / self.manifest["tokenizer"])
        return self._tokenizer

    def empty_cache(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """A fresh cache; for an in-place artifact, positions past the prompt are masked,
        so a new prompt needs no reset, and the handles are None."""
        if self.in_place:
            return None, None
        return np.zeros(self.cache_shape, np.float32), np.zeros(self.cache_shape, np.float32)

    def _step(self, method: str, tokens: np.ndarray, start: int, k, v):
        args = [tokens, np.array([start], np.int64)]
        if self.in_place:
            (logits,) = self._methods[method](args)
            return logits, k, v
        return self._methods[method](args + [k, v])

    def prefill_chunk(self, tokens: np.ndarray, start: int, k, v):
        """Up to prefill_len tokens at positions start.. -> (logits (n, vocab), k, v)."""
        n = len(tokens)
        padded = np.zeros((1, self.prefill_len), np.int64)
        padded[0, :n] = tokens
        logits, k, v = self._step("prefill", padded, start, k, v)
        return logits[0, :n], k, v

    def decode(self, token: int, pos: int, k, v):
        logits, k, v = self._step("decode", np.array([[token]], np.int64), pos, k, v)
        return logits[0, -1], k, v

    def _prefill_prompt(self, ids: np.ndarray):
        """The whole prompt, chunk by chunk -> (logits of its last token, decode state)."""
        k, v = self.empty_cache()
        for start in range(0, len(ids), self.prefill_len):
            logits, k, v = self.prefill_chunk(ids[start: start + self.prefill_len], start, k, v)
        return logits[-1], [k, v]

    def _decode_state(self, token: int, pos: int, state) -> np.ndarray:
        logits, state[0], state[1] = self.decode(token, pos, *state)
        return logits

    def generate(self, prompt: str, *, max_new_tokens: int = 64, temperature: float = 0.8, top_k: int = 40,
                 seed: int = 0, stop_tokens: tuple[int, ...] | None = None) -> GenerationResult:
        ids = np.array(self.tokenizer.encode(prompt).ids, np.int64)
        if len(ids) == 0:
            raise EdgekitError("empty_prompt", "the prompt encodes to no tokens", fix="pass a non-empty prompt")
        if len(ids) + max_new_tokens > self.max_seq_len:
            raise EdgekitError("too_long", f"prompt ({len(ids)} tokens) + max_new_tokens ({max_new_tokens}) "
                               f"exceeds the model's context of {self.max_seq_len}",
                               fix="shorten the prompt or lower --max-new-tokens")
        stop = set(stop_tokens if stop_tokens is not None else [self.tokenizer.token_to_id("<|endoftext|>")])
        rng = np.random.default_rng(seed)
        result = GenerationResult(text="", prompt_tokens=len(ids))
        t0 = time.perf_counter()
        logits, state = self._prefill_prompt(ids)
        result.prefill_s = time.perf_counter() - t0
        result.skipped_layers = sorted(state.skip) if hasattr(state, "skip") else None
        token, pos = sample(logits, temperature, top_k, rng), len(ids)
        t0 = time.perf_counter()
        while True:
            if token in stop:
                result.stop_reason = "stop_token"
                break
            result.new_tokens.append(token)
            if len(result.new_tokens) >= max_new_tokens:
                break
            logits = self._decode_state(token, pos, state)
            token, pos = sample(logits, temperature, top_k, rng), pos + 1
        result.decode_s = time.perf_counter() - t0
        result.text = self.tokenizer.decode(result.new_tokens)
        return result


def sample(logits: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator) -> int:
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    if 0 < top_k < len(z):
        cut = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= cut, z, -np.inf)
    p = np.exp(z - z.max())
    return int(rng.choice(len(p), p=p / p.sum()))
