"""MTCNN's O-Net (face box, landmarks and face score for a 48x48 crop) with the pretrained
weights that ship inside the facenet-pytorch wheel (``facenet_pytorch/data/onet.pt``).

facenet-pytorch itself pins torch < 2.3 and needs torchvision, so it is installed with
``--no-deps`` and only its weight file is read; the network below is the package's ``ONet``
(same layer names, so the state dict loads unchanged). Inputs are real photographs:
48x48 crops of scikit-learn's sample images, scaled as MTCNN does ((x - 127.5) / 128).

    edgekit export examples/mtcnn_onet/model.py:build --out out/examples
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn


def weights_path() -> Path:
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        from edgekit.errors import MissingDependency

        raise MissingDependency("facenet-pytorch", "examples", "the MTCNN O-Net example")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "onet.pt"


class ONet(nn.Module):
    """facenet_pytorch.models.mtcnn.ONet without the weight loading side effect."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, kernel_size=3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, kernel_size=3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, kernel_size=3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, kernel_size=2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def load() -> ONet:
    model = ONet()
    model.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True))
    return model.eval()


def crops(n: int, seed: int = 0) -> np.ndarray:
    """n 48x48 RGB crops (N, 3, 48, 48) of scikit-learn's two sample photographs, MTCNN-normalised."""
    from sklearn.datasets import load_sample_image

    images = [load_sample_image(name) for name in ("china.jpg", "flower.jpg")]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = images[i % 2]
        side = int(rng.integers(48, 200))
        y, x = int(rng.integers(0, img.shape[0] - side)), int(rng.integers(0, img.shape[1] - side))
        patch = torch.from_numpy(img[y:y + side, x:x + side].astype(np.float32)).permute(2, 0, 1)[None]
        patch = torch.nn.functional.interpolate(patch, size=(48, 48), mode="area")[0].numpy()
        out.append((patch - 127.5) / 128.0)
    return np.stack(out).astype(np.float32)


def build() -> dict:
    samples = crops(64)
    return {"model": load(), "example_inputs": (samples[:1],), "name": "mtcnn_onet",
            "dataset": lambda n: (crops(n, seed=1)[:, None],), "train_data": samples}
