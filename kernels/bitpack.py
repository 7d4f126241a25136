"""Pack small unsigned integers (palette indices) at their bit width, LSB first (numpy reference).

Index i of width b occupies bits [i*b, (i+1)*b) of the byte stream, least significant
bit first, so 3-bit indices take ceil(3 N / 8) bytes:

    >>> import numpy as np
    >>> packed = pack_bits(np.array([1, 7, 2, 0, 5], np.uint8), 3)
    >>> packed.nbytes, unpack_bits(packed, 3, 5).tolist()
    (2, [1, 7, 2, 0, 5])
"""

from __future__ import annotations

import numpy as np


def packed_nbytes(count: int, bits: int) -> int:
    return -(-count * bits // 8)


def pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """uint8 stream of ``values`` (each < 2**bits), ``bits`` per value, LSB first."""
    if not 1 <= bits <= 8:
        raise ValueError(f"bits = {bits!r} is invalid; valid: an integer 1..8")
    v = np.asarray(values).ravel()
    if v.size and (v.min() < 0 or v.max() >= 2 ** bits):
        raise ValueError(f"values span {v.min()}..{v.max()}, outside 0..{2 ** bits - 1} for {bits} bits")
    planes = (v.astype(np.uint8)[:, None] >> np.arange(bits, dtype=np.uint8)) & 1   # (N, bits)
    return np.packbits(planes.ravel(), bitorder="little")


def unpack_bits(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Inverse of ``pack_bits``: ``count`` uint8 values."""
    planes = np.unpackbits(np.asarray(packed, dtype=np.uint8), bitorder="little")[: count * bits]
    if planes.size != count * bits:
        raise ValueError(f"{packed.size} bytes hold {packed.size * 8 // bits} values of {bits} bits, not {count}")
    weights = (1 << np.arange(bits)).astype(np.uint8)
    return (planes.reshape(count, bits) * weights).sum(1).astype(np.uint8)
