"""Held-out digits accuracy and training time per family; writes docs/zoo_results/accuracy.json.

    .venv/bin/python benchmarks/zoo_accuracy.py --epochs 8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from edgekit.model_zoo.train import TrainConfig, train

RUNS = [  # (label, zoo name, overrides)
    ("resnet_tiny", "resnet_tiny", {}),
    ("vovnet_tiny", "vovnet_tiny", {}),
    ("phnn_tiny (n=4)", "phnn_tiny", {}),
    ("denseshift_tiny fp32", "denseshift_tiny", {"bits": None}),
    ("denseshift_tiny 3-bit", "denseshift_tiny", {"bits": 3}),
    ("hourglass_mlp_digits", "hourglass_mlp_digits", {}),
    ("conventional_mlp_digits", "conventional_mlp_digits", {}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="docs/zoo_results/accuracy.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for label, name, over in RUNS:
        r = train(name, TrainConfig(epochs=args.epochs), show_progress=False, **over)
        rows.append({"label": label, "model": name, "overrides": over, "params": r.params,
                     "accuracy": r.accuracy, "seconds": r.seconds, "epochs": args.epochs})
        Path(args.out).write_text(json.dumps(rows, indent=2))
        print(f"| {label} | {r.params:,} | {r.accuracy * 100:.2f}% | {r.seconds:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
