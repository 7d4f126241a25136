"""Core ML palettize4 package size of a 3-layer MLP against its fp32 package, and the bits stored.

    python benchmarks/coreml_palettize_ratio.py
    NPY_DISABLE_CPU_FEATURES="AVX512_SPR" python benchmarks/coreml_palettize_ratio.py   # see below

4-bit tables should give ~0.13x of the fp32 package (indices 1/8 of fp32, plus tables, biases and
the program). NumPy 2.x's broken AVX-512 float16 sort used to widen them to 6 bits (~0.19x): on an
Intel CPU with AVX512-FP16, disabling AVX512_SPR makes NumPy take the broken AVX512_ICL path (the
one AMD Zen 4 takes), so the second command reproduces the bug's conditions here
(`edgekit doctor` says whether this NumPy is affected).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path


def main() -> None:
    import numpy as np
    import torch

    from edgekit.bench import machine_info
    from edgekit.exporters.compression import compress
    from edgekit.exporters.pipeline import export_model

    def mlp():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                   torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()

    x = np.random.default_rng(0).standard_normal((1, 256)).astype(np.float32)
    work = Path(tempfile.mkdtemp(prefix="edgekit-ratio-"))
    fp32 = export_model(mlp(), (x,), "coreml", work / "fp32", options={"compute_precision": "fp32"},
                        parity_samples=4, show_progress=False)
    model, _ = compress(mlp(), "palettize4")
    p4 = export_model(model, (x,), "coreml", work / "p4", parity_samples=4, show_progress=False)
    rows = p4.manifest["compression"]["ledger"]
    print(json.dumps({
        "fp32_package_bytes": fp32.model_bytes, "palettize4_package_bytes": p4.model_bytes,
        "ratio": round(p4.model_bytes / fp32.model_bytes, 4),
        "index_bits": [r["encoded"]["index_bits"] for r in rows],
        "numpy_simd": machine_info()["numpy_simd"], "known_issues": machine_info()["known_issues"],
    }, indent=2))


if __name__ == "__main__":
    main()
