"""The 2:4 packed layout (kernels/src/matrix.h): 3-bit combination codes for the kept positions,
4 chunks sharing 3 position words, a layout mark after the blocks; sizes in words and bits a weight,
a NumPy decoder of the documented layout, every position pair, and arrays of the former layout refused."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgekit.errors import EdgekitError

PAIRS = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]  # combination code c -> kept positions
MARK = 0x32344B45


def _words(k: int, bits: int) -> int:
    """uint32 words of one row (src/matrix.h): full quads 3 + 4 cw, a partial quad of r chunks r (1 + cw)."""
    chunks, cw = -(-k // 32), -(-16 // (32 // bits))
    return chunks // 4 * (3 + 4 * cw) + chunks % 4 * (1 + cw)


def _decode(data: np.ndarray, n: int, k: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept mask, code of every kept column) of a packed 2:4 weight, from the documented layout."""
    words, F = _words(k, bits), 32 // bits
    cw, chunks, nblocks = -(-16 // F), -(-k // 32), -(-n // 16)
    body = data[: nblocks * words * 16].reshape(nblocks, words, 16)
    keep = np.zeros((nblocks * 16, chunks * 32), bool)
    codes = np.zeros((nblocks * 16, chunks * 32), np.int64)
    for r in range(nblocks * 16):
        row = [int(v) for v in body[r // 16, :, r % 16]]
        for c in range(chunks):
            quad, i = divmod(c, 4)
            first = quad * (3 + 4 * cw)  # the quad's chunk 0; chunk j < 3 starts with P_j
            stream = sum(row[first + j * (1 + cw)] << (32 * j) for j in range(min(3, chunks - 4 * quad)))
            field = (stream >> (24 * i)) & 0xFFFFFF
            code_at = first + i * (1 + cw) + (1 if i < 3 else 0)
            for gi in range(8):
                combo = (field >> (3 * gi)) & 7
                assert combo < 6, "codes 6 and 7 are never written"
                for s in range(2):
                    j, col = 2 * gi + s, c * 32 + 4 * gi + PAIRS[combo][s]
                    keep[r, col] = True
                    codes[r, col] = (row[code_at + j // F] >> (bits * (j % F))) & ((1 << bits) - 1)
    return keep[:n, :k], codes[:n, :k]


def test_sizes_are_2_75_bits_a_weight_at_4_bits(nk):
    lib = nk.lib()
    for k in (1, 31, 32, 33, 64, 96, 100, 128, 129, 352, 4096, 11008):
        for bits in (2, 3, 4):
            assert lib.ek_packed_words(2, 16, k, bits) == 16 * _words(k, bits) + 16 + 16, (k, bits)  # + mark, corr
    idx = np.zeros((4096, 4096), np.uint8)
    idx[:, ::2] = 1  # positions 0 and 2 of every group kept
    w = nk.pack_sparse24_lut(idx, np.array([0] + list(range(1, 16)), np.float32), 4)
    index_bits = (w.nbytes - 16 * 4) * 8  # less one table (nbytes: what an exact product reads)
    assert index_bits / (4096 * 4096) == 2.75  # 2 codes of 4 bits + 3 position bits per 4 weights
    data = w.arrays()["data"]
    body = 4096 * _words(4096, 4)
    assert data.size == body + 16 + 4096 and (data[body:body + 16] == MARK).all()
    # then the int8-activation correction per row: 128 * the sum of its kept int8 table values
    tq = np.round(np.arange(16) / (15 / 127)).astype(np.int64)  # the one table quantized to int8
    assert (data[body + 16:].view(np.int32) == 128 * 2048 * tq[1]).all()  # 2048 kept weights of code 1


@pytest.mark.parametrize("n,k,bits", [(16, 128, 4), (37, 53, 4), (50, 333, 3), (20, 200, 2), (3, 7, 4)])
def test_numpy_decode_of_the_documented_layout(nk, n, k, bits):
    """Every pair of positions, groups keeping 0, 1 or 2 weights, K tails and partial quads."""
    rng = np.random.default_rng(n * k + bits)
    table = np.concatenate([[0.0], rng.uniform(0.5, 2, 2 ** bits - 1)]).astype(np.float32)
    idx = np.zeros((n, k), np.uint8)
    for r, g in itertools.product(range(n), range(0, k, 4)):
        width = min(4, k - g)
        kept = rng.choice(width, min(width, rng.choice([0, 1, 2, 2, 2])), replace=False)
        idx[r, g + kept] = rng.integers(1, 2 ** bits, kept.size)
    w = nk.pack_sparse24_lut(idx, table, bits)
    keep, codes = _decode(w.arrays()["data"], n, k, bits)
    assert np.array_equal(np.where(keep, codes, 0), idx)  # pads are code 0 (the table's 0 entry)
    assert (keep.sum(axis=1) <= 2 * ((k + 3) // 4)).all()
    assert np.array_equal(w.dense(), table[idx])


def test_every_position_pair_round_trips(nk):
    """16 rows x 6 groups: group g keeps pair g (each code 0..5), the product equals the dense one."""
    idx = np.zeros((16, 24), np.uint8)
    for g, (a, b) in enumerate(PAIRS):
        idx[:, 4 * g + a] = 1 + g
        idx[:, 4 * g + b] = 9 + g % 7
    table = np.arange(16, dtype=np.float32) / 4
    w = nk.pack_sparse24_lut(idx, table, 4)
    field = int(w.arrays()["data"][0]) & 0xFFFFFF  # row 0, chunk 0: its first word holds P0
    assert [(field >> (3 * g)) & 7 for g in range(6)] == list(range(6))
    x = np.random.default_rng(0).standard_normal(24).astype(np.float32)
    for isa in ("scalar", "avx2", "avx512"):
        if nk.isa_supported(isa):
            np.testing.assert_allclose(nk.linear(w, x, isa=isa), table[idx] @ x, rtol=1e-6)


def test_former_layout_is_refused(nk):
    """Arrays without the mark (the former layout: a 2-bit position word per chunk) are not run."""
    idx = np.zeros((16, 64), np.uint8)
    idx[:, 1::4] = 3
    a = nk.pack_sparse24_lut(idx, np.arange(16, dtype=np.float32), 4).arrays()
    ok = nk.wrap(2, 16, 64, 4, 0, a["data"], a["tables"])
    assert np.array_equal(ok.dense(), np.arange(16, dtype=np.float32)[idx])
    old = a["data"].copy()
    old[-32:-16] = 0  # the mark (16 rows: one block, so its 16 corrections follow)
    with pytest.raises(EdgekitError) as e:
        nk.wrap(2, 16, 64, 4, 0, old, a["tables"])
    assert e.value.code == "packed_layout_mismatch" and "re-export" in str(e.value)
    with pytest.raises(EdgekitError) as e:  # the former size: 3 words a chunk, no mark
        nk.wrap(2, 16, 64, 4, 0, np.zeros(16 * 2 * 3, np.uint32), a["tables"])
    assert a["data"].size == 16 * 2 * 3 + 16 + 16  # this layout: 3 words a chunk here too, + mark + corr
    assert e.value.code == "packed_layout_mismatch"
