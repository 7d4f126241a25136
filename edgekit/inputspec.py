"""Input specs: bind a model's symbolic dimensions and say how to fill each input.

A signature dimension is concrete (an int), symbolic (a name such as ``"N"``,
shared by every axis that carries it) or unknown (``None``). A benchmark needs
concrete shapes, so a spec binds them:

    >>> sig = [{"name": "x", "shape": ["N", 3, "H", "W"], "dtype": "float32"}]
    >>> [r.shape for r in resolve(sig, [parse_input("x:1x3x64x64")])]
    [(1, 3, 64, 64)]
    >>> [r.shape for r in resolve(sig, [], {"N": 1, "H": 32, "W": 32})]
    [(1, 3, 32, 32)]

The CLI form is ``name[:SHAPE][:DTYPE][:FILL]`` with SHAPE ``1x3x640x640``
(``scalar`` for a 0-d input), and FILL ``=16000`` (a constant) or ``0..30000``
(random integers, both ends included). The REST form is the dict that
``parse_input`` returns: ``{name, shape, dtype, value, range}``.

Random data: floats are standard normal; integers are uniform in
``DEFAULT_INT_RANGE`` (1..16: never all zeros, valid as an id, a length or a
count) unless a range or constant is given; bools are random 0/1. This module
imports nothing heavy: the API process uses it to check specs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from edgekit.errors import EdgekitError

Dim = int | str | None
DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
DEFAULT_INT_RANGE = (1, 16)
_SHAPE_RE = re.compile(r"^\d+(x\d+)*$")
_RANGE_RE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")
_DIM_RE = re.compile(r"^([^=\s]+)=(\d+)$")


def dim_kind(d: Dim) -> str:
    """'concrete', 'symbolic' or 'unknown'."""
    return "concrete" if isinstance(d, int) else "unknown" if d is None else "symbolic"


def normalize_dim(d: Any) -> Dim:
    """A dimension as signatures store it: int >= 0, a symbol name, or None (unknown)."""
    if d is None or isinstance(d, bool):
        return None
    if isinstance(d, int):
        return d if d >= 0 else None  # TFLite's shape_signature says -1 for a dynamic axis
    s = str(d).strip()
    if s.lstrip("-").isdigit():
        return normalize_dim(int(s))
    return s or None


@dataclass(frozen=True)
class Resolved:
    """One model input with a concrete shape, its dtype and how to fill it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    value: float | int | None = None          # a constant
    range: tuple[int, int] | None = None      # random integers in [lo, hi]

    def fill(self) -> str:
        if self.value is not None:
            return f"={self.value:g}" if isinstance(self.value, float) else f"={self.value}"
        if self.dtype == "bool":
            return "random 0/1"
        if "float" in self.dtype:
            return "random normal"
        lo, hi = self.range or DEFAULT_INT_RANGE
        return f"random {lo}..{hi}" + ("" if self.range else " (default)")

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "fill": self.fill()}


# -- parsing -----------------------------------------------------------------------------------

def parse_input(text: str) -> dict:
    """``x:1x3x640x640``, ``rate:int64:=16000``, ``ids:1x16:int64:0..30000`` -> the REST dict."""
    name, _, rest = text.partition(":")
    if not name:
        raise _bad_input(text, "it has no input name before the first ':'")
    spec: dict = {"name": name, "shape": None, "dtype": None, "value": None, "range": None}
    for part in (rest.split(":") if rest else []):
        if part == "scalar":
            spec["shape"] = []
        elif _SHAPE_RE.match(part):
            spec["shape"] = [int(s) for s in part.split("x")]
        elif part in DTYPES:
            spec["dtype"] = part
        elif part.startswith("="):
            spec["value"] = _number(text, part[1:])
        elif m := _RANGE_RE.match(part):
            spec["range"] = [int(m.group(1)), int(m.group(2))]
        else:
            raise _bad_input(text, f"{part!r} is neither a shape (1x3x640x640 or scalar), a dtype "
                             f"({', '.join(DTYPES)}), a constant (=16000) nor a range (0..30000)")
    _check_fill(spec)
    return spec


def parse_dims(items: Sequence[str] | None) -> dict[str, int]:
    """``["N=1", "H=640"]`` -> ``{"N": 1, "H": 640}``."""
    dims: dict[str, int] = {}
    for item in items or ():
        m = _DIM_RE.match(item.strip())
        if not m:
            raise EdgekitError("bad_option", f"--dim {item!r} is not NAME=SIZE",
                               fix="pass the symbolic dimension's name and a size, e.g. --dim N=1 --dim H=640")
        dims[m.group(1)] = int(m.group(2))
    return dims


def _number(text: str, s: str) -> float | int:
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            raise _bad_input(text, f"constant {s!r} is not a number") from None


def _check_fill(spec: Mapping) -> None:
    if spec.get("value") is not None and spec.get("range") is not None:
        raise _bad_input(spec["name"], "give a constant or a range, not both")
    rng = spec.get("range")
    if rng is not None and (len(rng) != 2 or rng[0] > rng[1]):
        raise _bad_input(spec["name"], f"range {rng} must be [low, high] with low <= high")


def _bad_input(text: str, why: str) -> EdgekitError:
    return EdgekitError("bad_input_spec", f"input spec {text!r}: {why}",
                        fix="write NAME[:SHAPE][:DTYPE][:FILL], e.g. x:1x3x640x640, rate:int64:=16000 or "
                            "ids:1x16:int64:0..30000")


# -- binding -----------------------------------------------------------------------------------

def resolve(signature: Sequence[Mapping], specs: Sequence[Mapping] | None = None,
            dims: Mapping[str, int] | None = None) -> list[Resolved]:
    """Concrete shapes for every input of ``signature`` (dicts {name, shape, dtype}).

    ``specs`` are matched by name (or, without a name, by position); ``dims``
    binds symbolic names. Raises ``invalid_input`` naming the input and the
    dimension on a mismatch, and ``unbound_dims`` listing every dimension left
    without a size.
    """
    sig = [{"name": s["name"], "shape": [normalize_dim(d) for d in s["shape"]], "dtype": s["dtype"]}
           for s in signature]
    names = [s["name"] for s in sig]
    by_name = _match(sig, specs or [])
    bound: dict[str, int] = dict(dims or {})
    where: dict[str, str] = {k: "--dim / dims" for k in bound}
    symbols = {d for s in sig for d in s["shape"] if dim_kind(d) == "symbolic"}
    stray = sorted(set(bound) - symbols)
    if stray:
        raise EdgekitError("invalid_input", f"dims {stray} name no symbolic dimension of this model; its symbolic "
                           f"dimensions are {sorted(symbols) or 'none'}",
                           fix="bind only the names shown in the signature (edgekit inspect / GET /v1/artifacts)",
                           details={"given": stray, "symbols": sorted(symbols), "signature": sig})
    # Pass 1: shapes given in specs bind symbols (and must agree with concrete dims and each other).
    for s in sig:
        given = (by_name.get(s["name"]) or {}).get("shape")
        if given is None:
            continue
        _check_rank(s, given)
        for axis, (want, got) in enumerate(zip(s["shape"], given)):
            if not _is_size(got):
                continue  # a symbol or null sent back as the signature has it: sized elsewhere
            if isinstance(want, int) and want != got:
                raise _dim_mismatch(s, axis, want, got, sig)
            if isinstance(want, str):
                if want in bound and bound[want] != got:
                    raise _dim_mismatch(s, axis, want, got, sig,
                                        f"'{want}' is already {bound[want]} (from {where[want]})")
                bound.setdefault(want, got)
                where.setdefault(want, f"input '{s['name']}'")
    # Pass 2: every input gets a concrete shape, or its open dimensions are listed.
    out: list[Resolved] = []
    unbound: list[dict] = []
    for s in sig:
        spec = by_name.get(s["name"]) or {}
        dtype = spec.get("dtype") or s["dtype"]
        if dtype != s["dtype"]:
            raise EdgekitError("invalid_input", f"input '{s['name']}': the model takes {s['dtype']}, the spec "
                               f"says {dtype}", fix=f"use dtype {s['dtype']} (or leave the dtype out)",
                               details={"input": s["name"], "expected": s["dtype"], "given": dtype,
                                        "what": "dtype", "signature": sig})
        given = spec.get("shape") or [None] * len(s["shape"])
        shape_l: list[int] = []
        for axis, (d, g) in enumerate(zip(s["shape"], given)):
            if _is_size(g):
                shape_l.append(int(g))
            elif isinstance(d, int):
                shape_l.append(d)
            elif isinstance(d, str) and d in bound:
                shape_l.append(bound[d])
            else:
                unbound.append({"input": s["name"], "axis": axis, "dim": d})
        shape = tuple(shape_l)
        _check_value(s["name"], dtype, spec.get("value"))
        rng = spec.get("range")
        if rng is not None and ("float" in dtype or dtype == "bool"):
            raise _bad_input(s["name"], f"a range fills integer inputs only; '{s['name']}' is {dtype}")
        if rng is not None and not (_fits(dtype, rng[0]) and _fits(dtype, rng[1])):
            raise _bad_input(s["name"], f"range {rng[0]}..{rng[1]} does not fit {dtype}")
        out.append(Resolved(s["name"], shape, dtype, spec.get("value"), tuple(rng) if rng is not None else None))
    if unbound:
        listed = ", ".join(f"{u['input']}[{u['axis']}]={u['dim'] if u['dim'] is not None else '?'}"
                           for u in unbound)
        syms = sorted({u["dim"] for u in unbound if u["dim"] is not None})
        fix = ("bind them: " + " ".join(f"--dim {d}=SIZE" for d in syms) + ", or " if syms else "") + \
            "give each input a shape: --input NAME:1x3x224x224 (REST: \"dims\", or \"inputs\": [{name, shape}])"
        raise EdgekitError("unbound_dims", f"these input dimensions have no size: {listed}", fix=fix,
                           details={"unbound": unbound, "inputs": names, "signature": sig})
    return out


def _is_size(g: Any) -> bool:
    return isinstance(g, int) and not isinstance(g, bool)


def _check_value(name: str, dtype: str, value: Any) -> None:
    if value is None:
        return
    if not math.isfinite(float(value)):
        raise _bad_input(name, f"constant {value} is not a finite number")
    if "float" in dtype:
        return
    if dtype == "bool" and value not in (0, 1):
        raise _bad_input(name, f"constant {value} for a bool input: use 0 or 1")
    if dtype != "bool" and (float(value) != int(value) or not _fits(dtype, int(value))):
        raise _bad_input(name, f"constant {value} is not a {dtype} value")


def _fits(dtype: str, v: int) -> bool:
    bits = int(dtype.lstrip("uint") or 8)
    lo, hi = (0, 2**bits - 1) if dtype.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return lo <= v <= hi


def _match(sig: list[dict], specs: Sequence[Mapping]) -> dict[str, Mapping]:
    names = [s["name"] for s in sig]
    if any(not sp.get("name") for sp in specs):
        if len(specs) != len(sig):
            raise EdgekitError("invalid_input", f"{len(specs)} input spec(s) without names for a model with "
                               f"{len(sig)} inputs {names}", fix="name each input, or give one spec per input "
                               "in order", details={"expected": sig, "given": list(specs)})
        return {s["name"]: sp for s, sp in zip(sig, specs)}
    unknown = [sp["name"] for sp in specs if sp["name"] not in names]
    if unknown:
        raise EdgekitError("invalid_input", f"input(s) {unknown} unknown; the model takes {names}",
                           fix="use the input names of the model's signature",
                           details={"given": unknown, "inputs": names, "signature": sig})
    for sp in specs:
        _check_fill(sp)
    return {sp["name"]: sp for sp in specs}


def _check_rank(s: Mapping, given: Sequence[int]) -> None:
    if len(given) != len(s["shape"]):
        raise EdgekitError("invalid_input", f"input '{s['name']}': the model takes rank {len(s['shape'])} "
                           f"{_fmt(s['shape'])}, the spec gives rank {len(given)} {list(given)}",
                           fix=f"give '{s['name']}' {len(s['shape'])} dimensions",
                           details={"input": s["name"], "expected": s["shape"], "given": list(given),
                                    "what": "rank"})


def _dim_mismatch(s: Mapping, axis: int, want: Dim, got: int, sig: list, why: str = "") -> EdgekitError:
    what = f"dimension {axis} ({want!r})" if isinstance(want, str) else f"dimension {axis}"
    because = f": {why}" if why else f": the model fixes it to {want}"
    return EdgekitError("invalid_input", f"input '{s['name']}' {what} is {got}{because}",
                        fix=f"give '{s['name']}' a shape matching {_fmt(s['shape'])}",
                        details={"input": s["name"], "axis": axis, "dim": want, "given": got,
                                 "expected": s["shape"], "signature": sig})


def _fmt(shape: Sequence[Dim]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


# -- data ----------------------------------------------------------------------------------------

def make_arrays(resolved: Sequence[Resolved], seed: int = 0) -> list:
    """Seeded arrays for ``resolved`` (numpy imported here, not at module import)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for r in resolved:
        if r.value is not None:
            out.append(np.full(r.shape, r.value, dtype=r.dtype))
        elif r.dtype == "bool":
            out.append(rng.integers(0, 2, size=r.shape).astype(np.bool_))
        elif "float" in r.dtype:
            out.append(rng.standard_normal(r.shape).astype(r.dtype))
        else:
            lo, hi = r.range or DEFAULT_INT_RANGE
            info = np.iinfo(r.dtype)
            if lo < info.min or hi > info.max:
                raise _bad_input(r.name, f"range {lo}..{hi} does not fit {r.dtype} ({info.min}..{info.max})")
            out.append(rng.integers(lo, hi, size=r.shape, endpoint=True).astype(r.dtype))
    return out
