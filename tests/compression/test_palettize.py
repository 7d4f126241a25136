import numpy as np
import pytest

from edgekit.exporters.compression.kmeans import assign, kmeans1d
from edgekit.exporters.compression.palettize import palettize_array


def test_kmeans1d_matches_brute_force_on_small_data():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 0.1, 50), rng.normal(0, 0.1, 50), rng.normal(3, 0.1, 50)])
    c = kmeans1d(x, 3)
    assert np.allclose(np.sort(c), [-2, 0, 3], atol=0.1)
    # SSE no worse than sklearn's KMeans
    from sklearn.cluster import KMeans
    ref = KMeans(3, n_init=10, random_state=0).fit(x[:, None]).cluster_centers_.ravel()
    sse = lambda cc: np.sum((x - np.sort(cc)[assign(x, np.sort(cc))]) ** 2)  # noqa: E731
    assert sse(c) <= sse(ref) * 1.0001


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 6, 8])
def test_per_tensor_tables_hold_all_values_fp16_exact(bits):
    w = np.random.default_rng(bits).normal(0, 0.05, (16, 8, 3, 3)).astype(np.float32)
    q, tables, scale = palettize_array(w, bits)
    assert scale is None and tables.shape == (1, 2 ** bits)
    assert np.unique(q).size <= 2 ** bits
    assert set(np.unique(q)) <= set(tables[0])
    assert np.array_equal(q.astype(np.float16).astype(np.float32), q)  # fp16 targets store it exactly
    lloyd_max = {1: 0.60, 2: 0.34, 3: 0.18, 4: 0.095, 6: 0.045, 8: 0.015}  # ~optimal Gaussian quantizer rel. RMS
    assert np.linalg.norm(q - w) / np.linalg.norm(w) < lloyd_max[bits] * 1.1


def test_grouped_tables_and_uneven_groups():
    w = np.random.default_rng(0).normal(0, 1, (10, 12)).astype(np.float32)
    q, tables, _ = palettize_array(w, 2, group_size=4)   # groups 4, 4, 2
    assert tables.shape == (3, 4)
    for g, rows in enumerate([slice(0, 4), slice(4, 8), slice(8, 10)]):
        assert set(np.unique(q[rows])) <= set(tables[g])


def test_per_channel_scale():
    w = np.random.default_rng(0).normal(0, 1, (6, 32)).astype(np.float32) * np.arange(1, 7)[:, None]
    q, tables, scale = palettize_array(w, 3, per_channel_scale=True)
    assert scale.shape == (6,)
    for c in range(6):
        assert np.unique(q[c]).size <= 8
        assert np.allclose(np.unique(q[c] / scale[c]), np.intersect1d(tables[0], np.unique(q[c] / scale[c])), atol=1e-6)


def test_sparse_weights_keep_zeros_within_the_table():
    w = np.random.default_rng(0).normal(0, 1, (8, 64)).astype(np.float32)
    mask = np.abs(w) < 0.7
    w[mask] = 0
    q, tables, _ = palettize_array(w, 4, keep_zeros=mask)
    assert np.all(q[mask] == 0) and np.all(q[~mask] != 0)
    assert np.unique(q).size <= 16 and 0.0 in tables[0]
