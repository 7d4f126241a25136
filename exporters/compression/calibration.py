"""Calibration samples for int8: the model's dataset, or what the user passes.

    >>> import numpy as np
    >>> from edgekit.exporters.compression.calibration import resolve
    >>> samples, source = resolve(np.zeros((4, 1, 3), np.float32), (np.zeros((1, 3), np.float32),), 2)
    >>> len(samples), samples[0][0].shape, source
    (2, (1, 3), 'arrays (4 samples)')

Accepted sources: a folder of images (.png/.jpg/.jpeg/.bmp/.npy; images are resized to
the model's input and standardised like the zoo's digits unless the .npz/.npy already
holds model inputs), an ``.npz`` (one array per model input, in order or by input name,
with a leading sample axis), a numpy array (one input), or a Python iterable of samples
(each an array or a tuple of arrays). A sample may carry the batch axis or not. Anything
that does not fit the model's inputs raises ``calibration_mismatch`` naming the shape
expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def resolve(source: Any, example_inputs: tuple[np.ndarray, ...], n: int, dataset=None, *,
            skip: int = 0, names: tuple[str, ...] | None = None) -> tuple[list[tuple[np.ndarray, ...]], str]:
    """(up to ``n`` samples shaped like ``example_inputs``, a description of where they came from).

    With no source, the model's ``dataset`` is used, skipping its first ``skip`` samples (the
    ones the parity check runs on), so calibration and parity see different data."""
    if source is None:
        if dataset is None:
            raise EdgekitError(
                "needs_calibration_data", "int8 with static activations needs calibration samples and the model "
                "has no dataset", fix="pass calibration samples: --calibration DIR|FILE.npz, or "
                "compress(model, recipe, data=...) with an .npz, a folder of images, arrays or an iterable; or "
                "use the int8_dynamic preset (no calibration)")
        data = dataset(skip + n)
        samples = _split(tuple(np.asarray(a)[skip:] for a in data), example_inputs)
        if not samples:  # the dataset is smaller than skip + n: reuse its samples
            samples = _split(tuple(np.asarray(a) for a in data), example_inputs)
        return samples[:n], f"model dataset ({len(samples[:n])} samples after the first {skip})"
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            return _from_folder(path, example_inputs, n), f"folder {path}"
        if path.suffix == ".npz" and path.is_file():
            with np.load(path) as npz:
                arrays = _npz_arrays(npz, example_inputs, names, path)
            return _split(arrays, example_inputs)[:n], f"{path.name}"
        if path.suffix == ".npy" and path.is_file():
            return _split((np.load(path),), example_inputs)[:n], f"{path.name}"
        raise EdgekitError("calibration_not_found", f"calibration source {str(path)!r} is not a folder, an .npz "
                           "or an .npy file", fix="pass a folder of images, FILE.npz (one array per input) or "
                           "FILE.npy", details={"path": str(path)})
    if isinstance(source, np.ndarray) or (isinstance(source, tuple) and source and
                                          all(isinstance(a, np.ndarray) for a in source)
                                          and len(source) == len(example_inputs) and
                                          all(np.ndim(a) == np.ndim(e) + 1 for a, e in zip(source, example_inputs))):
        arrays = (source,) if isinstance(source, np.ndarray) else tuple(source)
        samples = _split(arrays, example_inputs)
        return samples[:n], f"arrays ({len(samples)} samples)"
    if hasattr(source, "__iter__"):
        samples = []
        for item in source:
            item = tuple(item) if isinstance(item, (tuple, list)) else (item,)
            samples.append(_one(tuple(np.asarray(_to_numpy(a)) for a in item), example_inputs, len(samples)))
            if len(samples) >= n:
                break
        if not samples:
            raise _mismatch(example_inputs, "an empty iterable")
        return samples, f"iterable ({len(samples)} samples)"
    raise EdgekitError("calibration_mismatch", f"calibration source of type {type(source).__name__} is not "
                       "supported", fix="pass a folder, an .npz/.npy path, numpy arrays or an iterable of samples")


def _to_numpy(a):
    return a.detach().cpu().numpy() if hasattr(a, "detach") else a


def _one(sample: tuple[np.ndarray, ...], examples: tuple[np.ndarray, ...], index: int) -> tuple[np.ndarray, ...]:
    """One sample shaped like the examples (the batch axis added when missing), or calibration_mismatch."""
    if len(sample) != len(examples):
        raise _mismatch(examples, f"{len(sample)} array(s) per sample (sample {index})")
    out = []
    for a, e in zip(sample, examples):
        if a.shape != e.shape and a.shape == e.shape[1:] and e.shape[:1] == (1,):
            a = a[None]
        if a.shape != e.shape:
            raise _mismatch(examples, f"shape {list(a.shape)} (sample {index})")
        out.append(np.ascontiguousarray(a, dtype=e.dtype))
    return tuple(out)


def _split(arrays: tuple[np.ndarray, ...], examples: tuple[np.ndarray, ...]) -> list[tuple[np.ndarray, ...]]:
    """Arrays with a leading sample axis -> one tuple per sample."""
    if len(arrays) != len(examples):
        raise _mismatch(examples, f"{len(arrays)} array(s)")
    counts = {len(a) for a in arrays}
    if len(counts) != 1:
        raise _mismatch(examples, f"arrays with different sample counts {sorted(counts)}")
    return [_one(tuple(a[i] for a in arrays), examples, i) for i in range(counts.pop())]


def _npz_arrays(npz, examples, names, path) -> tuple[np.ndarray, ...]:
    keys = list(npz.files)
    if names and all(k in keys for k in names):
        return tuple(npz[k] for k in names)
    if len(keys) < len(examples):
        raise _mismatch(examples, f"{path.name} with {len(keys)} array(s) ({', '.join(keys)})")
    return tuple(npz[k] for k in keys[:len(examples)])


def _from_folder(path: Path, examples: tuple[np.ndarray, ...], n: int) -> list[tuple[np.ndarray, ...]]:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + (".npy",))
    if not files:
        raise EdgekitError("calibration_not_found", f"folder {str(path)!r} holds no images "
                           f"({', '.join(IMAGE_SUFFIXES)}) or .npy samples",
                           fix="put calibration images in the folder, or pass FILE.npz")
    if len(examples) != 1:
        raise _mismatch(examples, f"a folder of single images (the model has {len(examples)} inputs)")
    return [(_image_input(f, examples[0]),) for f in files[:n]]


def _image_input(file: Path, example: np.ndarray) -> np.ndarray:
    """One image file -> the model's input layout (N, C, H, W), standardised like the zoo's digits."""
    if file.suffix == ".npy":
        return _one((np.load(file),), (example,), 0)[0]
    if example.ndim != 4:
        raise _mismatch((example,), f"images ({file.name}); the model's input is not (N, C, H, W)")
    try:
        from PIL import Image
    except ImportError as e:  # Pillow comes with matplotlib (bench extra)
        from edgekit.errors import MissingDependency

        raise MissingDependency("pillow", "bench", "reading calibration images") from e
    _, c, h, w = example.shape
    img = Image.open(file).convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
    if x.shape[0] != c:
        x = np.repeat(x[:1], c, axis=0)
    return ((x - 0.3) / 0.4)[None].astype(example.dtype)  # the digits data's standardisation (model_zoo/data.py)


def _mismatch(examples: tuple[np.ndarray, ...], given: str) -> EdgekitError:
    expected = [list(e.shape) for e in examples]
    shown = ", ".join(f"{list(e.shape)} {e.dtype}" for e in examples)
    return EdgekitError(
        "calibration_mismatch", f"calibration samples do not match the model's inputs: expected {len(examples)} "
        f"input(s) of shape {shown} (or without the batch axis), given {given}",
        fix="pass samples shaped like the model's inputs: an .npz with one array (N, *shape) per input, a folder "
            "of images, or an iterable of per-sample arrays",
        details={"expected": expected, "given": given})
