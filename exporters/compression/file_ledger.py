"""Map a model's layers to the weight tensors an artifact file holds, by value.

Converters rename, transpose, negate, re-lay-out (OIHW -> OHWI), fold BatchNorm
into and duplicate weights; their tensor names cannot be trusted (litert-torch's
names skip ``nn.ModuleList`` levels). So every weight tensor read back from the
file (``exporters/file_weights.py``) is matched to the layer whose weight it holds,
up to an axis permutation, a sign, a per-output-channel scale (a folded
BatchNorm) and the storage's rounding (fp16, int8 x scale, lookup tables). A layer
may own several stored tensors (TFLite keeps W and -W for a Linear before PReLU):
all of them are counted.
"""

from __future__ import annotations

import itertools

import numpy as np

from edgekit.exporters.file_weights import Stored, read_stored, weight_bytes

# Largest elementwise error, relative to the layer's peak |w|, that still counts as the same weight:
# fp16 rounding is < 2^-11 relative; symmetric int8 per channel is half a step of peak/127.
TOLERANCE = {"float32": 1e-5, "float16": 1.5e-3, "int": 0.5 / 127 + 1e-4}


def weight_layers(model) -> dict[str, np.ndarray]:
    """Module name -> weight (fp32) for every module whose weight has at least two axes longer than 1."""
    out = {}
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        if w is None or not hasattr(w, "detach") or sum(1 for s in w.shape if s > 1) < 2:
            continue
        out[name] = w.detach().float().cpu().numpy()
    return out


def match_file(model, model_file) -> dict:
    """{'layers': {layer: [stored facts]}, 'weight_bytes': bytes of all weight tensors in the file,
    'matched_bytes', 'unmatched': [stored facts]} for the artifact's model file."""
    stored = [s for s in read_stored(model_file) if s.is_weight or s.raw is not None and s.nbytes >= 64]
    layers = weight_layers(model)
    by_numel: dict[int, list[str]] = {}
    for name, w in layers.items():
        by_numel.setdefault(w.size, []).append(name)
    sorted_abs = {name: np.sort(np.abs(w.ravel())) for name, w in layers.items()}
    found: dict[str, list[dict]] = {}
    unmatched = []
    for s in stored:
        hit = None
        for name in by_numel.get(s.numel if s.shape else s.nbytes, []):
            hit = _match(s, layers[name], sorted_abs[name])
            if hit:
                found.setdefault(name, []).append(_facts(s, hit, layers[name].size))
                break
        if hit is None and s.values is not None:  # rows gathered at export (embeddings at fixed positions)
            for name, w in layers.items():
                if w.ndim == 2 and s.numel % w.shape[1] == 0 and _rows_of(w, s.values):
                    hit = "rows of W"
                    found.setdefault(name, []).append(_facts(s, hit, s.numel))
                    break
        if hit is None and s.is_weight:
            unmatched.append(_facts(s, None, s.numel))
    total = weight_bytes(stored)
    matched = sum(f["bytes"] for fs in found.values() for f in fs)
    return {"weight_bytes": total, "matched_bytes": matched, "layers": found, "unmatched": unmatched}


def _facts(s: Stored, form: str | None, numel: int) -> dict:
    return {"tensor": s.name, "dtype": s.dtype, "shape": list(s.shape), "bytes": int(s.nbytes),
            "bits_per_weight": round(8 * s.nbytes / max(1, numel), 3), "form": form}


def _match(s: Stored, w: np.ndarray, w_sorted_abs: np.ndarray) -> str | None:
    """How ``s`` holds ``w`` ('W', '-W', 'W permuted (0, 2, 3, 1)', 'W x channel scale', 'int8(W)'), or None."""
    peak = float(w_sorted_abs[-1]) or 1.0
    if s.values is None:
        if s.raw is not None and s.raw.dtype == np.int8 and s.raw.size == w.size:
            return _match_raw_int8(s.raw, w)
        return None
    v = s.values.astype(np.float32).ravel()
    tol = peak * (TOLERANCE["int"] if s.dtype.startswith(("int", "uint")) else
                  TOLERANCE["float16"] if s.dtype != "float32" else TOLERANCE["float32"])
    perms = _perms_for(w, s.shape)
    if np.abs(np.sort(np.abs(v)) - w_sorted_abs).max() <= tol:
        for form, ok in _layouts(w, v, tol, perms):
            if ok:
                return form
    # relative error allowed after rescaling: the storage's rounding of the rescaled values
    rel = 1e-4 if s.dtype == "float32" else TOLERANCE["int"] * 1.1 if s.dtype.startswith(("int", "uint")) else 2e-3
    return _match_channel_scaled(w, v, perms, rel)


def _layouts(w: np.ndarray, v: np.ndarray, tol: float, perms):
    for perm in perms:
        wp = np.transpose(w, perm).ravel()
        tag = "W" if perm == tuple(range(w.ndim)) else f"W permuted {perm}"
        yield tag, np.abs(wp - v).max() <= tol
        yield "-" + tag, np.abs(wp + v).max() <= tol


def _match_channel_scaled(w: np.ndarray, v: np.ndarray, perms, rel: float = 1e-4) -> str | None:
    """A weight rescaled per output and/or per input channel: S = diag(r) W diag(c). Converters fold a
    BatchNorm after a conv into its rows, a LayerNorm's gamma before a Linear into its columns, and
    attention's 1/sqrt(d) into the query rows."""
    for perm in perms:
        axis = perm.index(0)  # where W's output-channel axis went
        wp = np.transpose(w, perm)
        vp = v.reshape(wp.shape)
        a = np.moveaxis(wp, axis, 0).reshape(wp.shape[axis], -1).astype(np.float64)
        b = np.moveaxis(vp, axis, 0).reshape(wp.shape[axis], -1).astype(np.float64)
        # a 16 x 256 corner first: wrong candidates fail there at a fraction of the cost
        if _rank1_residual(a[:16, :256], b[:16, :256]) > rel or _rank1_residual(a, b) > rel:
            continue
        return "W x channel scales" + ("" if perm == tuple(range(w.ndim)) else f" permuted {perm}")
    return None


def _rank1_residual(a: np.ndarray, b: np.ndarray) -> float:
    """max |b - diag(r) a diag(c)| / max |b| for the best r, c (alternating medians of b / a)."""
    nz = np.abs(a) > 1e-3 * np.abs(a).max()
    if nz.mean() < 0.25:  # 2:4 sparse weights are half zeros
        return np.inf
    with np.errstate(all="ignore"):
        ratio = np.where(nz, b / np.where(nz, a, 1.0), np.nan)
        col = np.ones(a.shape[1])
        for _ in range(3):  # alternate: rows first (exact for a pure row scale), then columns
            row = np.nanmedian(ratio / col[None, :], axis=1)
            row = np.where(np.isfinite(row) & (row != 0), row, 1.0)
            col = np.nanmedian(ratio / row[:, None], axis=0)
            col = np.where(np.isfinite(col) & (col != 0), col, 1.0)
    return float(np.abs(b - row[:, None] * a * col[None, :]).max() / (np.abs(b).max() or 1.0))


def _rows_of(w: np.ndarray, v: np.ndarray) -> bool:
    """Every row of ``v`` (last axis = W's rows' length) is a row of ``w``, up to fp16 rounding."""
    rows = v.reshape(-1, w.shape[1]).astype(np.float32)
    if len(rows) > 4096 or w.shape[0] > 65536:
        return False
    tol = 1.5e-3 * (float(np.abs(w).max()) or 1.0)
    for chunk in range(0, len(rows), 256):
        r = rows[chunk:chunk + 256]
        # nearest row of W by max-abs difference, computed through the L2 nearest first
        d = (r * r).sum(1)[:, None] - 2 * r @ w.T + (w * w).sum(1)[None, :]
        nearest = w[d.argmin(1)]
        if np.abs(nearest - r).max() > tol:
            return False
    return True


def _match_raw_int8(q: np.ndarray, w: np.ndarray) -> str | None:
    """int8 values stored without their scales: the sorted codes of symmetric per-channel int8(W)."""
    from edgekit.exporters.tflite.pow2_int8 import rounded_int8

    ref, _ = rounded_int8(w.reshape(w.shape[0], -1))
    return "int8(W)" if np.abs(np.sort(q.ravel().astype(int)) - np.sort(ref.ravel().astype(int))).max() <= 1 else None


def _perms_for(w: np.ndarray, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Axis orders of ``w`` that give the stored shape (all of them when the file's rank differs)."""
    perms = list(_perms(w.ndim))
    if len(shape) == w.ndim:
        fit = [p for p in perms if tuple(w.shape[i] for i in p) == tuple(shape)]
        return fit
    return perms


def _perms(ndim: int):
    ident = tuple(range(ndim))
    yield ident
    if ndim <= 4:
        for p in itertools.permutations(range(ndim)):
            if p != ident:
                yield p
