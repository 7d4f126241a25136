"""Export a FiRST model so that skipped layers cost nothing at decode: one .pte with a method per piece.

Methods (ExecuTorch, XNNPACK), all static shapes, P = prefill_len:

- ``embed_prefill`` tokens (1, P) -> h (1, P, dim); ``embed_decode`` tokens (1, 1) -> h (1, 1, dim)
- ``routers`` pooled (layers, dim) -> keep probabilities (layers,): row l is the mean prompt hidden state
  entering layer l (the host fills the row of the layer it is deciding; one method instead of one per
  layer keeps the program, and its export time, smaller)
- ``layer_{l}_prefill`` / ``layer_{l}_decode`` (h, start_pos, k_l, v_l) -> (h, k_l, v_l), one layer's
  cache (1, kv_heads, max_seq, head_dim)
- ``head_prefill`` / ``head_decode`` h -> logits
- ``decode_skip_{a}_{b}...`` (tokens (1, 1), start_pos, k, v) -> (logits, k, v): the whole decode step
  fused for one skip set, the cache holding the kept layers only (n_kept, 1, kv_heads, max_seq, head_dim);
  ``decode_skip_none`` is the full model.

The host loop (``edgekit.generate.FiRSTSession``) runs prefill layer by layer: embed,
then per layer the router on the pooled prompt state, and that layer's prefill
only if kept. Decode uses the fused method of the chosen skip set when the artifact
has one, else the per-layer methods of the kept layers. Which fused sets to ship:
by default ``{}`` plus the skip sets the routers choose for at least ``min_share`` of
validation prompts (docs/llm.md, "FiRST", measures per-layer against fused decode).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekit.artifact import TensorSpec
from edgekit.errors import EdgekitError
from edgekit.exporters.base import captured_native_output
from edgekit.exporters.llm import llm_compression_section, llm_manifest_header
from edgekit.targets import FIRST, names_with

FIRST_TARGETS = names_with(FIRST)


def skip_method_name(skip) -> str:
    return "decode_skip_" + ("_".join(str(i) for i in sorted(skip)) or "none")


class EmbedStep(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens):
        return self.model.embed_tokens(tokens)


class RoutersStep(nn.Module):
    def __init__(self, routers):
        super().__init__()
        self.routers = routers

    def forward(self, pooled):
        return torch.cat([r(pooled[i:i + 1]) for i, r in enumerate(self.routers.layers)])


class LayerStep(nn.Module):
    def __init__(self, model, index: int):
        super().__init__()
        self.model, self.index = model, index

    def forward(self, h, start_pos, k_cache, v_cache):
        cos, sin, write, mask = self.model.step_context(start_pos, h.shape[1])
        return self.model.layers[self.index](h, cos, sin, write, mask, k_cache, v_cache)


class HeadStep(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, h):
        return self.model.lm_head(self.model.norm(h))


class FusedDecode(nn.Module):
    """One decode step through the kept layers only; the cache holds the kept layers, in order."""

    def __init__(self, model, kept: tuple[int, ...]):
        super().__init__()
        self.model, self.kept = model, kept

    def forward(self, tokens, start_pos, k_cache, v_cache):
        cos, sin, write, mask = self.model.step_context(start_pos, tokens.shape[1])
        x = self.model.embed_tokens(tokens)
        new_k, new_v = [], []
        for j, i in enumerate(self.kept):
            x, k, v = self.model.layers[i](x, cos, sin, write, mask, k_cache[j], v_cache[j])
            new_k.append(k)
            new_v.append(v)
        logits = self.model.lm_head(self.model.norm(x))
        if not new_k:
            return logits, k_cache, v_cache
        return logits, torch.stack(new_k), torch.stack(new_v)


@torch.no_grad()
def chosen_skip_sets(model, routers, tokens: np.ndarray, prompt_len: int, windows: int = 64,
                     window: int = 128) -> Counter:
    """How often the routers choose each skip set for prompt_len-token prompts taken from ``tokens``."""
    from edgekit.model_zoo.first import first_prefill

    counts = Counter()
    for w in range(min(windows, len(tokens) // window)):
        prompt = torch.from_numpy(tokens[w * window: w * window + prompt_len])[None]
        counts[first_prefill(model, routers, prompt)[3]] += 1
    return counts


def export_first_llm(model, routers, tokenizer_file: str | Path, out_dir: str | Path, *, name: str = "llama",
                     target: str = "executorch", prefill_len: int = 16, fused_sets=None, min_share: float = 0.1,
                     max_fused: int = 4, calibration_tokens: np.ndarray | None = None,
                     parity_tokens: np.ndarray | None = None, manifest_extra: dict | None = None,
                     options: dict | None = None, allow_decompressed: bool = False):
    """Write a FiRST artifact. ``fused_sets``: skip sets to give a fused decode method (None = the empty set plus
    the sets chosen for >= min_share of the ``calibration_tokens`` prompts, at most max_fused of them).
    ``options``: the target's LLM options (exporters/llm_options.py); ``allow_decompressed`` as ``export_llm``."""
    from edgekit.exporters.llm_options import llm_fields, llm_options
    from edgekit.exporters.staged import ExportSteps, staged_export
    from edgekit.model_zoo.first import check_routers_fit

    if target not in FIRST_TARGETS:
        raise EdgekitError("first_target", f"FiRST export to {target!r} is not offered; choose one of "
                           f"{', '.join(FIRST_TARGETS)}", fix="pass --target executorch with --first",
                           details={"value": target, "choices": list(FIRST_TARGETS)})
    opts = llm_options(target, options)
    model, routers = model.eval(), routers.eval()
    model.skip = frozenset()
    check_routers_fit(routers, model)
    cfg = model.cfg
    counts = Counter()
    if fused_sets is None:
        fused_sets = [frozenset()]
        if calibration_tokens is not None:
            counts = chosen_skip_sets(model, routers, calibration_tokens, prefill_len)
            total = sum(counts.values())
            fused_sets += [s for s, c in counts.most_common() if s and c / total >= min_share][:max_fused]
    # A method whose cache has zero kept layers would take zero-size tensors, which ExecuTorch aborts on;
    # "skip every layer" decodes through embed + head (the per-layer path) instead.
    fused_sets = [s for s in dict.fromkeys(frozenset(s) for s in fused_sets) if len(s) < cfg.n_layers]
    for s in fused_sets:
        if not s <= set(range(cfg.n_layers)):
            raise EdgekitError("bad_skip_set", f"skip set {sorted(s)} names layers outside 0..{cfg.n_layers - 1}",
                               fix="list layer indices of this model")

    # Distinct example tensors for K and V: torch.export treats one tensor passed twice as one aliased input.
    k1, v1 = (torch.zeros(1, cfg.n_kv_heads, cfg.max_seq_len, cfg.head_dim) for _ in range(2))
    h = {t: torch.zeros(1, t, cfg.dim) for t in (prefill_len, 1)}
    pos = torch.zeros(1, dtype=torch.long)
    modules: dict[str, tuple[nn.Module, tuple]] = {
        "embed_prefill": (EmbedStep(model), (torch.zeros(1, prefill_len, dtype=torch.long),)),
        "embed_decode": (EmbedStep(model), (torch.zeros(1, 1, dtype=torch.long),)),
        "head_prefill": (HeadStep(model), (h[prefill_len],)),
        "head_decode": (HeadStep(model), (h[1],)),
    }
    modules["routers"] = (RoutersStep(routers), (torch.zeros(cfg.n_layers, cfg.dim),))
    for i in range(cfg.n_layers):
        modules[f"layer_{i}_prefill"] = (LayerStep(model, i), (h[prefill_len], pos, k1, v1))
        modules[f"layer_{i}_decode"] = (LayerStep(model, i), (h[1], pos, k1, v1))
    fused = {}
    for s in fused_sets:
        kept = tuple(i for i in range(cfg.n_layers) if i not in s)
        kk, vv = (torch.zeros(len(kept), 1, cfg.n_kv_heads, cfg.max_seq_len, cfg.head_dim) for _ in range(2))
        fused[",".join(map(str, sorted(s)))] = skip_method_name(s)
        modules[skip_method_name(s)] = (FusedDecode(model, kept), (torch.zeros(1, 1, dtype=torch.long), pos, kk, vv))

    from edgekit.exporters.executorch.llm import write_pte  # FIRST_TARGETS: ExecuTorch only

    def describe(stage: Path, file: str) -> dict:
        shutil.copy(tokenizer_file, stage / "tokenizer.json")
        signature = {}
        for m, (mod, ex) in modules.items():
            with torch.no_grad():
                outs = mod(*ex)
            outs = outs if isinstance(outs, tuple) else (outs,)
            signature[m] = {"file": file,
                            "inputs": [TensorSpec.of(f"in{j}", x.numpy()).to_json() for j, x in enumerate(ex)],
                            "outputs": [TensorSpec.of(f"out{j}", y.numpy()).to_json() for j, y in enumerate(outs)]}
        manifest = llm_manifest_header(model, name, target, prefill_len) | {
            "precision": "fp32",
            "model_file": file, "methods": signature, "tokenizer": "tokenizer.json", "skip_layers": [],
            "first": {"version": 1, "threshold": routers.cfg.threshold, "router_config": dataclasses.asdict(routers.cfg),
                      "router": "keep if router_l(mean over prompt of h entering l) >= threshold",
                      "fused_decode": fused,
                      "calibration_skip_sets": {",".join(map(str, sorted(s))) or "-": c
                                                for s, c in counts.most_common()}},
            "signature": {"inputs": signature["embed_decode"]["inputs"], "outputs": signature["head_decode"]["outputs"]},
            "compression": {"recipe": None, "ledger": []},
        } | (manifest_extra or {})
        manifest["options"] |= {n: getattr(opts, n) for n in llm_fields(target)}  # the target's, as used
        from edgekit.exporters.compression.record import compressed_layers
        if compressed_layers(model):  # a clustered checkpoint: stored dense fp32, gated as in export_llm
            manifest["compression"] = llm_compression_section(model, target=target,
                                                              allow_decompressed=allow_decompressed)
        return manifest

    def parity(stage: Path, file: str, manifest: dict) -> dict | None:
        if parity_tokens is None:
            return None
        from edgekit.first_session import FiRSTSession
        with captured_native_output():
            session = FiRSTSession(stage)
        return first_parity(model, routers, session, parity_tokens, prefill_len)

    return staged_export(out_dir, ExportSteps(
        target=target, trace=lambda: {m: torch.export.export(mod.eval(), ex) for m, (mod, ex) in modules.items()},
        convert=lambda programs, stage: write_pte(programs, stage, opts), describe=describe, parity=parity,
        options=opts, diagnose_method="layer_0_decode"))


def first_parity(model, routers, session, tokens: np.ndarray, prefill_len: int, prompts: int = 4,
                 decode_steps: int = 16, window: int = 128) -> dict:
    """Several real prompts: the artifact must choose the same skip sets as torch, and its logits (routed
    prefill, then teacher-forced decode through both the fused and the per-layer path) must match."""
    from edgekit import parity
    from edgekit.model_zoo.first import first_prefill

    ref, got, sets, mismatched = [], [], [], []
    for w in range(min(prompts, len(tokens) // window)):
        seq = tokens[w * window: w * window + prefill_len + decode_steps]
        prompt, rest = seq[:prefill_len], seq[prefill_len:]
        lg, k, v, skip = first_prefill(model, routers, torch.from_numpy(prompt[None]))
        glg, state = session.prefill(prompt)
        sets.append(sorted(skip))
        if state.skip != skip:
            mismatched.append({"prompt": w, "torch": sorted(skip), "artifact": sorted(state.skip)})
            continue
        ref.append(lg[0, -1].numpy()), got.append(glg)
        model.skip = skip
        try:
            for i, tok in enumerate(rest):
                with torch.no_grad():
                    lg, k, v = model(torch.tensor([[int(tok)]]), torch.tensor([prefill_len + i]), k, v)
                fused = i % 2 == 0  # alternate the two decode paths over the same cache
                glg = session.decode_step(int(tok), prefill_len + i, state, fused=fused)
                ref.append(lg[0, -1].numpy()), got.append(glg)
        finally:
            model.skip = frozenset()
    metrics = parity.compare([r[None] for r in ref], [g[None] for g in got]) if ref else {}
    ok, tol = parity.passes(metrics, "fp32") if ref else (False, {})
    return {"mode": "numeric", "ok": bool(ok and not mismatched), "precision": "fp32", "tolerance": tol,
            "metrics": metrics, "skip_sets": sets, "skip_set_mismatches": mismatched,
            "input_source": f"pydoc text: {len(sets)} prompts of {prefill_len} tokens + {decode_steps} "
                            "teacher-forced decode steps each (fused and per-layer decode alternated)"}
