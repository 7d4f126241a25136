"""Parity metrics between a source model's outputs and an artifact's (numpy only)."""

from __future__ import annotations

import math

import numpy as np

# Gate per precision. cosine_min is the worst sample's cosine similarity;
# top1 is the share of samples whose arg-max class agrees (classification-shaped
# outputs only).
TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"cosine_min": 0.99999, "top1": 0.99},
    "fp16": {"cosine_min": 0.999, "top1": 0.95},
    "int8": {"cosine_min": 0.99, "top1": 0.90},
    # int8 weights and activations (the int8 recipe, static): rounding of every activation leaves a few
    # low-norm samples below 0.99, so the mean carries the 0.99 and the worst sample gets 0.95
    "int8_static": {"cosine_mean": 0.99, "cosine_min": 0.95, "top1": 0.90},
}


def compare(reference: list[np.ndarray], candidate: list[np.ndarray], kind: str | None = None) -> dict:
    """Metrics over samples: each list holds one array per sample (same output).

    ``kind`` is the output's kind (``edgekit.outputs``): top-1 only for ``classes``;
    ``None`` means classes when each sample is [batch, C] (the LLM/logits callers).
    """
    ref = np.stack([np.asarray(r, dtype=np.float64) for r in reference])
    got = np.stack([np.asarray(c, dtype=np.float64) for c in candidate])
    if ref.shape != got.shape:
        raise ValueError(f"shape mismatch: reference {ref.shape} vs artifact {got.shape}")
    n = ref.shape[0]
    flat_r, flat_g = ref.reshape(n, -1), got.reshape(n, -1)
    diff = flat_g - flat_r
    mse = float(np.mean(diff**2))
    peak = float(np.max(np.abs(flat_r))) or 1.0
    norms = np.linalg.norm(flat_r, axis=1) * np.linalg.norm(flat_g, axis=1)
    dots = np.sum(flat_r * flat_g, axis=1)
    cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1), np.where(np.all(diff == 0, axis=1), 1.0, 0.0))
    metrics = {
        "samples": n,
        "max_abs_err": float(np.max(np.abs(diff))) if diff.size else 0.0,
        "mean_abs_err": float(np.mean(np.abs(diff))) if diff.size else 0.0,
        "cosine_min": float(np.min(cos)),
        "cosine_mean": float(np.mean(cos)),
        "psnr_db": float("inf") if mse == 0 else 10 * math.log10(peak**2 / mse),
    }
    is_classes = kind == "classes" or (kind is None and ref.ndim == 3 and ref.shape[-1] > 1)
    if is_classes and ref.ndim >= 2 and ref.shape[-1] > 1:
        top_r = ref.reshape(-1, ref.shape[-1]).argmax(-1)
        top_g = got.reshape(-1, got.shape[-1]).argmax(-1)
        metrics["top1"] = float(np.mean(top_r == top_g))
    return metrics


def passes(metrics: dict, precision: str) -> tuple[bool, dict]:
    tol = TOLERANCES[precision]
    ok = all(metrics.get(k, 1.0) >= v for k, v in tol.items())
    return ok, tol
