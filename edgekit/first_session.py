"""Torch-free generation for FiRST artifacts: the routers pick the skipped layers from the prompt, once.

    >>> from edgekit.generate import open_llm
    >>> llm = open_llm("out/first/llama_pydoc_skip50/executorch")      # doctest: +SKIP
    >>> r = llm.generate("The for statement", max_new_tokens=40)        # doctest: +SKIP
    >>> r.skipped_layers, r.decode_tokens_per_s                         # doctest: +SKIP

Prefill runs layer-major: all prompt chunks through the embedding, then for each
layer the router on the mean prompt state entering it and, only if the layer is
kept, its prefill method over every chunk (chunk c attends to the cache rows that
chunks < c wrote in the same layer). The KV cache then holds the kept layers only.
Decode calls the fused method of the chosen skip set when the artifact ships one,
else embed + the kept layers' decode methods + head. Skipped layers are never called.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.generate import LLMSession


@dataclass
class FiRSTState:
    skip: frozenset[int]
    kept: tuple[int, ...]
    k: np.ndarray   # (n_kept, 1, kv_heads, max_seq, head_dim)
    v: np.ndarray
    fused: str | None  # the fused decode method of this skip set, if the artifact has one


class FiRSTSession(LLMSession):
    def __init__(self, path: str | Path, threads: int | None = None, threshold: float | None = None,
                 use_fused: bool = True):
        super().__init__(path, threads)
        first = self.manifest["first"]
        self.threshold = float(first["threshold"] if threshold is None else threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise EdgekitError("bad_threshold", f"FiRST threshold {self.threshold} is outside [0, 1]",
                               fix="pass a threshold in [0, 1]: 0 never skips; the artifact's default is "
                                   f"{first['threshold']}")
        self.use_fused = use_fused
        self.n_layers = int(self.manifest["model"]["config"]["n_layers"])
        self.fused = {frozenset(int(i) for i in key.split(",") if i): name
                      for key, name in first["fused_decode"].items()}

    def _method_names(self) -> tuple[str, ...]:
        return tuple(self.manifest["methods"])

    def prefill(self, ids: np.ndarray) -> tuple[np.ndarray, FiRSTState]:
        """Route and prefill a whole prompt -> (logits of its last token, decode state)."""
        ids = np.asarray(ids, np.int64)
        n, p = len(ids), self.prefill_len
        chunks = [(c, min(p, n - c)) for c in range(0, n, p)]
        hs = []
        for c, m in chunks:
            padded = np.zeros((1, p), np.int64)
            padded[0, :m] = ids[c: c + m]
            hs.append(np.array(self._methods["embed_prefill"]([padded])[0]))
        layer_shape = self.cache_shape[1:]
        ks, vs, kept = [], [], []
        for i in range(self.n_layers):
            pooled = np.concatenate([h[0, :m] for h, (_, m) in zip(hs, chunks)]).mean(0, keepdims=True)
            rows = np.zeros((self.n_layers, pooled.shape[1]), np.float32)
            rows[i] = pooled[0]
            keep_p = float(self._methods["routers"]([rows])[0].reshape(-1)[i])
            if keep_p < self.threshold:
                continue
            k, v = np.zeros(layer_shape, np.float32), np.zeros(layer_shape, np.float32)
            for j, (c, _) in enumerate(chunks):
                h, k, v = self._methods[f"layer_{i}_prefill"]([hs[j], np.array([c], np.int64), k, v])
                hs[j] = np.array(h)
            kept.append(i)
            ks.append(k)
            vs.append(v)
        logits = self._methods["head_prefill"]([hs[-1]])[0][0, chunks[-1][1] - 1]
        skip = frozenset(set(range(self.n_layers)) - set(kept))
        empty = np.zeros((0, *layer_shape), np.float32)
        state = FiRSTState(skip=skip, kept=tuple(kept), k=np.stack(ks) if ks else empty,
                           v=np.stack(vs) if vs else empty.copy(), fused=self.fused.get(skip))
        return logits, state

    def decode_step(self, token: int, pos: int, state: FiRSTState, fused: bool | None = None) -> np.ndarray:
        """One token through the kept layers; updates ``state`` -> logits (vocab,)."""
        tok, at = np.array([[token]], np.int64), np.array([pos], np.int64)
        if (self.use_fused if fused is None else fused) and state.fused:
            logits, state.k, state.v = self._methods[state.fused]([tok, at, state.k, state.v])
            return logits[0, -1]
        h = self._methods["embed_decode"]([tok])[0]
        for j, i in enumerate(state.kept):
            h, state.k[j], state.v[j] = self._methods[f"layer_{i}_decode"]([h, at, state.k[j], state.v[j]])
        return self._methods["head_decode"]([h])[0][0, -1]

    def _prefill_prompt(self, ids: np.ndarray):
        return self.prefill(ids)

    def _decode_state(self, token: int, pos: int, state: FiRSTState) -> np.ndarray:
        return self.decode_step(token, pos, state)

    def prefill_chunk(self, *args, **kwargs):
        raise EdgekitError("first_artifact", "a FiRST artifact has no single prefill method",
                           fix="use FiRSTSession.prefill(ids) (it routes, then prefills the kept layers)")

    decode = prefill_chunk
