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


# --- the same LSB-first stream on torch tensors (eDKM's packed row indices, all-gathered between ranks) ---

TORCH_CHUNK = 1 << 20  # entries packed/unpacked at a time (bounds the temporary bit matrix to bits x 1 MiB)


def pack_bits_torch(values, bits: int):
    """``pack_bits`` of a non-negative int64 torch tensor (< 2**bits): a uint8 tensor, byte for byte the same."""
    import torch

    n = values.numel()
    out = torch.empty(packed_nbytes(n, bits), dtype=torch.uint8)
    shifts = torch.arange(bits, dtype=torch.int64)
    weights = (1 << torch.arange(8, dtype=torch.int64))
    for start in range(0, n, TORCH_CHUNK):  # TORCH_CHUNK is a multiple of 8: each chunk ends on a byte
        chunk = values.reshape(-1)[start:start + TORCH_CHUNK].to(torch.int64)
        stream = ((chunk[:, None] >> shifts) & 1).reshape(-1)
        pad = -stream.numel() % 8
        if pad:
            stream = torch.cat([stream, stream.new_zeros(pad)])
        packed = (stream.view(-1, 8) * weights).sum(1).to(torch.uint8)
        out[start * bits // 8:start * bits // 8 + packed.numel()] = packed
    return out


def unpack_bits_torch(packed, bits: int, count: int):
    """Inverse of ``pack_bits_torch``: the first ``count`` entries as int64."""
    import torch

    out = torch.empty(count, dtype=torch.int64)
    shifts = torch.arange(8, dtype=torch.int64)
    weights = (1 << torch.arange(bits, dtype=torch.int64))
    for start in range(0, count, TORCH_CHUNK):
        n = min(TORCH_CHUNK, count - start)
        raw = packed[start * bits // 8:start * bits // 8 + packed_nbytes(n, bits)].to(torch.int64)
        stream = ((raw[:, None] >> shifts) & 1).reshape(-1)[:n * bits]
        out[start:start + n] = (stream.view(n, bits) * weights).sum(1)
    return out


# --- planar layout (ONNX): what a graph of BitShift/Mod nodes unpacks without bit-level gathers ---

def pack_planar(indices: np.ndarray, field: int) -> np.ndarray:
    """8/field planes of M = ceil(N / planes) elements; byte j holds element i*M + j in field i (bits
    [i*field, (i+1)*field)). ``field`` divides 8; a 3-bit index takes a 4-bit field."""
    flat = np.asarray(indices).reshape(-1).astype(np.uint8)
    planes = 8 // field
    m = -(-flat.size // planes)
    padded = np.zeros(planes * m, np.uint8)
    padded[:flat.size] = flat
    out = np.zeros(m, np.uint8)
    for i in range(planes):
        out |= (padded[i * m:(i + 1) * m] << (i * field)).astype(np.uint8)
    return out


def unpack_planar(packed: np.ndarray, field: int, numel: int) -> np.ndarray:
    """Inverse of ``pack_planar``: the first ``numel`` indices (the reference for the ONNX unpacking nodes)."""
    planes = 8 // field
    parts = [(np.asarray(packed).astype(np.int64) >> (i * field)) % (1 << field) for i in range(planes)]
    return np.concatenate(parts)[:numel].astype(np.uint8)
