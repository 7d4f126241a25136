"""``export-llm --executorch-kernels edgekit``: clustered / shift Linear layers of an LLM stay at their bit width.

A hook of ``exporters/llm.py``: before the methods are traced, every compressed ``nn.Linear`` of the
Llama (an eDKM checkpoint's, or a ``--recipe``'s) is swapped for an ``EdgekitLinear``
(``exporters/executorch/native_kernels.py``) holding the packed indices + tables, so prefill, decode
and reset call ``edgekit::lut_linear`` / ``shift_linear`` and the .pte stores the packed arrays once
(the three methods share the constants). The ledger's bytes are the packed arrays found in the .pte,
by value (``file_bytes``). ``--executorch-kernels edgekit-q8``: the same arrays on ``lut_linear_q8`` /
``shift_linear_q8`` (int8 activations, one scale per row; the ledger rows say so, parity at int8 tolerance).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.executorch.native_kernels import KERNELS  # none, edgekit, edgekit-q8


def check_kernels(kernels: str, target: str, weights: str) -> None:
    """Refuse combinations before any conversion work."""
    from edgekit.errors import UnknownChoice

    if kernels not in KERNELS:
        raise UnknownChoice("ExecuTorch kernels", kernels, KERNELS)
    if kernels == "none":
        return
    if target != "executorch":
        raise EdgekitError("kernels_unsupported_for_target", f"--executorch-kernels {kernels} is for the executorch "
                           f"target, not {target!r}", fix="drop --executorch-kernels for this target, or export "
                           "--target executorch")
    if weights != "fp32":
        raise EdgekitError("bad_option", f"--executorch-kernels {kernels} and --weights {weights} both claim the "
                           "linear weights; pick one", fix="drop --weights (the clustered layers run on edgekit's "
                           "kernels), or drop --executorch-kernels")
    from edgekit.kernels.executorch_ops import ops_library_path

    if not ops_library_path().is_file():
        raise EdgekitError("native_kernels_missing", f"the ExecuTorch kernel library {ops_library_path()} is not "
                           "built", fix="run `make native` in the edgekit checkout (export extra installed)",
                           details={"path": str(ops_library_path())})


def swap_llm(model, kernels: str = "edgekit"):
    """(copy of ``model`` running its compressed Linears on edgekit ops, per-layer encodings);
    ``kernels="edgekit-q8"``: the int8-activation ops (``lut_linear_q8`` / ``shift_linear_q8``)."""
    from edgekit.exporters.compression.record import compressed_layers
    from edgekit.exporters.executorch.native_kernels import swap_compressed_linears

    if not compressed_layers(model):
        raise EdgekitError("nothing_compressed", f"--executorch-kernels {kernels}: the model has no clustered or shift "
                           "layers to keep compressed", fix="export an eDKM checkpoint (edgekit compress-llm) or "
                           "pass --recipe palettize3 (or another palettize/shift recipe)")
    from edgekit.exporters.llm_fuse import fuse_llm

    swapped, encodings = swap_compressed_linears(model, kernels)
    swapped.skip = model.skip
    fuse_llm(model, swapped, encodings)  # q/k/v and gate/up as one op each where exact
    return swapped, encodings


ATTENTION = ("auto", "graph", "edgekit")


def resolve_attention(attention: str, kernels: str, target: str) -> str:
    """``graph`` (the model's matmul / softmax ops, delegated like the rest) or ``edgekit`` (one
    ``edgekit::attention`` op a layer that reads only the cache positions in use; the .pte then needs the
    ops library at run time, as edgekit linear ops do). ``auto``: edgekit with edgekit kernels, else graph."""
    from edgekit.errors import UnknownChoice

    if attention not in ATTENTION:
        raise UnknownChoice("ExecuTorch attention", attention, ATTENTION)
    if attention == "auto":
        return "edgekit" if kernels != "none" else "graph"
    if attention == "edgekit" and target != "executorch":
        raise EdgekitError("kernels_unsupported_for_target", f"--executorch-attention edgekit is for the executorch "
                           f"target, not {target!r}", fix="drop --executorch-attention for this target")
    if attention == "edgekit":
        check_kernels("edgekit", target, "fp32")  # the ops library must be built
    return attention


def set_kernel_attention(model, on: bool) -> None:
    """Let the in-place (ExecuTorch) step of ``model`` run its attention on ``edgekit::attention``."""
    if on:
        from edgekit.kernels.executorch_ops import define_ops

        define_ops()  # torch.ops.edgekit.* (also without edgekit linears, e.g. --weights int4)
    for layer in model.layers:
        layer.self_attn.kernel_attention = on


def file_bytes(pte: str | Path, swapped, encodings: dict) -> dict:
    """Each native layer's ``bytes``: its packed arrays (index words, tables, row scales) found in ``pte``.

    Every array is looked up byte for byte in the file (once, although every method refers to it);
    a packed array missing from the file is an exporter bug: raised, never reported as written.
    """
    import mmap

    out = {}
    with open(pte, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        for name, enc in encodings.items():
            module = swapped.get_submodule(enc.get("fused_into", name))
            # a fused layer (llm_fuse.py) owns its rows' share: rows of index words, groups of tables
            share = (enc["rows"][1] - enc["rows"][0], module.out_features) if "fused_into" in enc else (1, 1)
            total = 0
            for buf in (module.data, module.tables, module.scale):
                if not buf.numel():
                    continue
                a = np.ascontiguousarray(buf.numpy()).tobytes()
                if _find(mm, a) < 0:
                    raise EdgekitError("packed_weights_missing", f"layer {name}: its packed {buf.dtype} array "
                                       f"{tuple(buf.shape)} is not in {Path(pte).name}", fix="report this as a bug")
                total += len(a) * share[0] // share[1]
            out[name] = enc | {"bytes": total, "bytes_from": "file"}
    return out


def _find(mm, needle: bytes) -> int:
    """Offset of ``needle`` in ``mm`` (a 64-byte prefix search, then the whole array compared), or -1."""
    pos = mm.find(needle[:64])
    while pos >= 0:
        if mm[pos: pos + len(needle)] == needle:
            return pos
        pos = mm.find(needle[:64], pos + 1)
    return -1


def apply_recipe(model, recipe: str, exclude: str | None = None):
    """``export-llm --recipe``: a post-training recipe (palettize / k-means, shift, sparsity) on every Linear
    (lm_head included) except ``exclude`` (re.search on module names). Training-time recipes need the
    LLM's data loop: eDKM is ``edgekit compress-llm``."""
    from edgekit.exporters.compression.recipe import compress, load_recipe

    r = load_recipe(recipe)
    types = {type(c).__name__ for s in r.steps for c in (s.default, *s.by_type.values(), *s.by_name.values()) if c is not None}
    if r.training or types - {"PalettizeConfig", "ShiftQuantConfig", "SparsityConfig"}:
        raise EdgekitError("recipe_unsupported_for_llm", f"export-llm --recipe {r.name!r}: only post-training "
                           f"palettize / shift / sparsity recipes apply to an LLM here (this one has {sorted(types)}"
                           f"{', training' if r.training else ''})",
                           fix="use palettize2/3/4, palettize4_grouped, shift3/4 or sparse24; eDKM: edgekit "
                               "compress-llm then export-llm the clustered checkpoint; int8: --weights int8")
    new, _ = compress(model, r, exclude=exclude)
    return new.eval(), r


def _window_nll(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean next-token negative log-likelihood, in float64 (the same reduction for torch and artifact)."""
    z = logits.astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(-logp[np.arange(len(targets)), targets].mean())


def perplexities(model, session, ids: np.ndarray, seq_len: int, max_windows: int = 64) -> dict:
    """Held-out perplexity of the torch ``model`` and of the artifact ``session`` (an ``LLMSession``) on the
    same non-overlapping windows (as ``model_zoo.llm_train.perplexity``): the artifact prefills each window
    from position 0 in its prefill chunks; both use one float64 log-softmax."""
    import torch

    windows = min(max_windows, (len(ids) - 1) // seq_len)
    torch_nll, art_nll, max_abs = [], [], 0.0
    for w in range(windows):
        chunk = np.asarray(ids[w * seq_len: (w + 1) * seq_len + 1], np.int64)
        with torch.no_grad():
            ref = model.logits_full(torch.from_numpy(chunk[None, :-1]))[0].numpy()
        k, v = session.empty_cache()
        got = []
        for start in range(0, seq_len, session.prefill_len):
            logits, k, v = session.prefill_chunk(chunk[start: min(start + session.prefill_len, seq_len)], start, k, v)
            got.append(logits)
        got = np.concatenate(got)
        max_abs = max(max_abs, float(np.abs(got - ref).max()))
        torch_nll.append(_window_nll(ref, chunk[1:]))
        art_nll.append(_window_nll(got, chunk[1:]))
    pt, pa = float(np.exp(np.mean(torch_nll))), float(np.exp(np.mean(art_nll)))
    return {"windows": windows, "seq_len": seq_len, "tokens": windows * seq_len, "torch": pt, "artifact": pa,
            "rel_diff": abs(pa - pt) / pt, "max_abs_logit_diff": max_abs}
