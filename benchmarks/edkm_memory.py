"""eDKM vs naive DKM: bytes saved for backward on one large layer, gradients compared.

    .venv/bin/python benchmarks/edkm_memory.py [--rows 2048 --cols 2048] [--world 2]

Counts the bytes autograd keeps for backward during one DKM forward (3 soft
k-means iterations) of a bf16 weight: naive = every saved storage once; eDKM =
what the pack hook stores (distinct rows + a shared row index bit-packed at
ceil(log2(distinct rows)) bits, dedup).
With --world N, N gloo processes each store a 1/N shard of the row index.
Writes docs/edkm_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(rows: int, cols: int, bits: int, packer, seed: int = 0):
    import torch

    from edgekit.exporters.compression.dkm import dkm_iterate
    from edgekit.exporters.compression.kmeans import kmeans1d

    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(rows, cols, generator=g) * 0.02).to(torch.bfloat16).requires_grad_(True)
    sigma = float(w.detach().float().std())
    init = kmeans1d(w.detach().float()[:256].numpy().ravel() / sigma, 2 ** bits)
    c = torch.tensor(init, dtype=torch.bfloat16)
    upstream = torch.randn(rows * cols, generator=g).to(torch.bfloat16)
    x = (w / sigma).reshape(-1, 1)
    t0 = time.perf_counter()
    if packer is None:
        soft, _ = dkm_iterate(x, c, 0.01, 3)
    else:
        with packer.scope(x):
            soft, _ = dkm_iterate(x, c, 0.01, 3)
    fwd = time.perf_counter() - t0
    (soft * upstream).sum().backward()
    return w.grad.float(), fwd


def measure(rows: int, cols: int, bits: int) -> dict:
    import torch

    from edgekit.exporters.compression.edkm import NaivePacker, SavedTensorPacker

    naive = NaivePacker()
    g_naive, t_naive = run_once(rows, cols, bits, naive)
    edkm = SavedTensorPacker()
    g_edkm, t_edkm = run_once(rows, cols, bits, edkm)
    g_plain, _ = run_once(rows, cols, bits, None)
    return {"rows": rows, "cols": cols, "weights": rows * cols, "bits": bits, "dtype": "bfloat16",
            "naive_saved_bytes": naive.bytes_now, "edkm_saved_bytes": edkm.bytes_peak,
            "ratio": naive.bytes_now / edkm.bytes_peak,
            "edkm_index_bytes": edkm.index_bytes, "edkm_index_bits": edkm.index_bits,
            "grad_equal_to_no_hooks": bool(torch.equal(g_edkm, g_plain)),
            "grad_max_abs_diff": float((g_edkm - g_naive).abs().max()),
            "forward_seconds": {"naive": t_naive, "edkm": t_edkm}}


def _worker(rank: int, world: int, rows: int, cols: int, bits: int, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    from edgekit.exporters.compression.edkm import SavedTensorPacker

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    packer = SavedTensorPacker(shard=True)
    g_shard, _ = run_once(rows, cols, bits, packer)
    g_plain, _ = run_once(rows, cols, bits, None)
    res = {"rank": rank, "edkm_sharded_saved_bytes": packer.bytes_peak,
           "grad_equal_to_no_hooks": bool(torch.equal(g_shard, g_plain))}
    Path(f"{out}.rank{rank}").write_text(json.dumps(res))
    dist.destroy_process_group()


def measure_sharded(rows: int, cols: int, bits: int, world: int) -> list[dict]:
    import tempfile

    import torch.multiprocessing as mp

    out = tempfile.mktemp()
    mp.spawn(_worker, args=(world, rows, cols, bits, 29500 + os.getpid() % 1000, out), nprocs=world, join=True)
    return [json.loads(Path(f"{out}.rank{r}").read_text()) for r in range(world)]


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=2048)
    p.add_argument("--cols", type=int, default=2048)
    p.add_argument("--bits", type=int, nargs="*", default=[3, 4])
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "docs" / "edkm_memory.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    res = {"command": "benchmarks/edkm_memory.py " + " ".join(argv or sys.argv[1:]), "single": [], "sharded": {}}
    for b in args.bits:
        r = measure(args.rows, args.cols, b)
        res["single"].append(r)
        print(json.dumps(r), file=sys.stderr)
    if args.world > 1:
        b = args.bits[0]
        res["sharded"] = {"bits": b, "world": args.world,
                          "ranks": measure_sharded(args.rows, args.cols, b, args.world)}
        print(json.dumps(res["sharded"]), file=sys.stderr)
    Path(args.out).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
