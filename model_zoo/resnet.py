"""ResNet (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, arXiv 1512.03385).

Basic-block ResNet-18 as the reference CNN for export and benchmarks, plus a
narrow, small-input variant for tests. Parity and calibration use the digits
images resized to the model's input size.
"""

from __future__ import annotations

from torch import nn

from edgekit.model_zoo.common import image_classifier_spec, seed_bn_stats
from edgekit.model_zoo.registry import register_family
from edgekit.spec import ModelSpec


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet(nn.Module):
    def __init__(self, widths, depths, num_classes: int = 1000, in_chans: int = 3, stem_stride: int = 2):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, widths[0], 7 if stem_stride == 2 else 3, stem_stride, 3 if stem_stride == 2 else 1,
                      bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1) if stem_stride == 2 else nn.Identity(),
        )
        layers, cin = [], widths[0]
        for i, (w, d) in enumerate(zip(widths, depths)):
            for j in range(d):
                layers.append(BasicBlock(cin, w, 2 if (j == 0 and i > 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


cfgs = {
    "resnet18": dict(widths=(64, 128, 256, 512), depths=(2, 2, 2, 2), num_classes=1000, img_size=224, stem_stride=2),
    "resnet18_digits": dict(widths=(64, 128, 256, 512), depths=(2, 2, 2, 2), num_classes=10, img_size=32,
                            stem_stride=1),
    "resnet_tiny": dict(widths=(8, 16, 32, 64), depths=(1, 1, 1, 1), num_classes=10, img_size=32, stem_stride=1),
}


def _build_spec(name: str, img_size: int, num_classes: int, **model_kwargs) -> ModelSpec:
    def build():
        import torch

        with torch.random.fork_rng():  # the same weights on every build, without touching the caller's RNG
            torch.manual_seed(0)
            model = ResNet(num_classes=num_classes, **model_kwargs)
        seed_bn_stats(model)
        return model.eval()

    return image_classifier_spec(name, "resnet", "He et al. 2016, arXiv 1512.03385", build, img_size,
                                 model_kwargs.get("in_chans", 3))


register_family(cfgs, lambda name, **overrides: _build_spec(name, **(cfgs[name] | overrides)))
