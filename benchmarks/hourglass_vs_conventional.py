"""Hourglass vs conventional residual MLP on digits denoising at matched trainable parameters.

Task: clean 8x8 digit from the digit plus Gaussian noise (sigma 0.5 in standardised
units); score: held-out PSNR (dB, peak = data range). For each hourglass size the
conventional hidden width is chosen so the trainable counts match (within 3%).
Writes docs/zoo_results/hourglass.json.

    .venv/bin/python benchmarks/hourglass_vs_conventional.py --epochs 60
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from edgekit.model_zoo.data import digits
from edgekit.model_zoo.hourglass import HourglassConfig, HourglassMLP, trainable_params

SIZES = [(256, 16, 2), (512, 32, 3), (1024, 48, 4)]  # hourglass (d_z, d_h, depth)
SIGMA = 0.5


def matched_conventional(target: int, depth: int) -> HourglassConfig:
    best = None
    for d_h in range(65, 4096):
        cfg = HourglassConfig(d_in=64, d_out=64, d_h=d_h, depth=depth, kind="conventional")
        gap = abs(trainable_params(HourglassMLP(cfg)) - target)
        if best is None or gap < best[0]:
            best = (gap, cfg)
        elif gap > best[0]:
            break
    return best[1]


def fit(cfg: HourglassConfig, epochs: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    x_tr, _ = digits(8, 1, "train")
    x_te, _ = digits(8, 1, "test")
    xt, xe = torch.from_numpy(x_tr), torch.from_numpy(x_te)
    g = torch.Generator().manual_seed(seed)
    model = HourglassMLP(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * math.ceil(len(xt) / 128)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 128):
            clean = xt[order[i:i + 128]]
            noisy = clean + SIGMA * torch.randn(clean.shape, generator=g)
            loss = torch.nn.functional.mse_loss(model(noisy), clean.flatten(1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    ge = torch.Generator().manual_seed(123)
    with torch.no_grad():
        pred = model(xe + SIGMA * torch.randn(xe.shape, generator=ge))
        mse = torch.mean((pred - xe.flatten(1)) ** 2).item()
    peak = float(xe.max() - xe.min())
    return 10 * math.log10(peak**2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--out", default="docs/zoo_results/hourglass.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for d_z, d_h, depth in SIZES:
        hg = HourglassConfig(d_in=64, d_out=64, d_z=d_z, d_h=d_h, depth=depth)
        n = trainable_params(HourglassMLP(hg))
        conv = matched_conventional(n, depth)
        row = {"depth": depth, "hourglass": {"d_z": d_z, "d_h": d_h, "params": n, "psnr_db": fit(hg, args.epochs)},
               "conventional": {"d_x": 64, "d_h": conv.d_h, "params": trainable_params(HourglassMLP(conv)),
                                "psnr_db": fit(conv, args.epochs)}}
        rows.append(row)
        Path(args.out).write_text(json.dumps({"sigma": SIGMA, "epochs": args.epochs, "rows": rows}, indent=2))
        print(json.dumps(row), flush=True)
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return  # the table in docs/zoo.md is the record
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for kind in ("hourglass", "conventional"):
        ax.plot([r[kind]["params"] for r in rows], [r[kind]["psnr_db"] for r in rows], "o-", label=kind)
    ax.set_xscale("log"), ax.set_xlabel("trainable parameters"), ax.set_ylabel("PSNR (dB)"), ax.legend()
    fig.tight_layout()
    fig.savefig(Path(args.out).with_suffix(".png"), dpi=120)


if __name__ == "__main__":
    main()
