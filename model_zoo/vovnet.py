"""VoVNet (OSA) and VoVNetV2 (OSA + identity + eSE).

Papers:
- V1: Lee et al., "An Energy and GPU-Computation Efficient Backbone Network for
  Real-Time Object Detection", CVPRW 2019, arXiv 1904.09730.
- V2: Lee and Park, "CenterMask: Real-Time Anchor-Free Instance Segmentation",
  CVPR 2020, arXiv 1911.06667.

An OSA module runs L 3x3 ConvBNReLU layers in a chain and concatenates the input
with every layer's output **once**, followed by a 1x1 ConvBNReLU. V2 adds an
identity shortcut (every module but the first of a stage) and effective
squeeze-excitation (eSE: GAP -> one CxC 1x1 conv with bias -> hard-sigmoid gate).

Choices (docs/ALGORITHMS.md §1.4), all documented in docs/zoo.md:
- **eSE placement**: ``ese="last"`` (default) puts eSE in the last module of each
  stage, as timm does; parameter counts then equal timm's and timm checkpoints
  load unchanged. ``ese="every"`` puts it in every module (detectron2's
  behaviour); ``ese="none"`` for V1.
- **V1 has no identity** (timm ``vovnet39a/57a``); stigma0617's V1 code adds it,
  set ``residual=True`` to get that.
- dw variants use stem (64, 64, 64) with separable stem[1] and stem[2].
- Pooling between stages is ``MaxPool2d(3, 2, ceil_mode=True)``: 56 -> 28 at 224².

Module names follow timm's ``vovnet.py`` so a timm state dict loads key for key
(``load_timm_state_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgekit.errors import EdgekitError
from edgekit.model_zoo.common import image_classifier_spec, seed_bn_stats
from edgekit.model_zoo.registry import register_family
from edgekit.spec import ModelSpec

PAPER = "Lee et al. 2019, arXiv 1904.09730 (V1); Lee & Park 2020, arXiv 1911.06667 (V2, eSE)"
ESE_PLACEMENTS = ("none", "last", "every")


# ---------------------------------------------------------------- blocks


class ConvNormAct(nn.Module):
    """conv (no bias) -> BatchNorm -> ReLU; 3x3 convs pad 1."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SeparableConvNormAct(nn.Module):
    """depthwise 3x3 -> pointwise 1x1 -> BatchNorm -> ReLU (no BN between dw and pw)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.conv_dw = nn.Conv2d(cin, cin, kernel, stride, kernel // 2, groups=cin, bias=False)
        self.conv_pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv_pw(self.conv_dw(x))))


class EffectiveSE(nn.Module):
    """eSE: x * hsigmoid(W · GAP(x) + b), one CxC 1x1 conv, no channel reduction."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid()  # relu6(z + 3) / 6; every target has it or lowers it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc(x.mean((2, 3), keepdim=True)))


class OsaBlock(nn.Module):
    """One-shot aggregation: y = 1x1(concat[x, f_1, ..., f_L]) [-> eSE] [+ x]."""

    def __init__(self, cin: int, mid: int, cout: int, layers: int, residual: bool, depthwise: bool, ese: bool):
        super().__init__()
        if residual and cin != cout:
            raise EdgekitError("bad_config", f"an identity OSA block needs cin == cout, got {cin} != {cout}",
                               fix="only the non-first blocks of a stage may be residual")
        self.residual = residual
        # dw layers keep width, so a 1x1 reduction brings cin to mid first.
        self.conv_reduction = ConvNormAct(cin, mid, 1) if depthwise and cin != mid else None
        width = mid if depthwise else cin
        mids = []
        for _ in range(layers):
            mids.append(SeparableConvNormAct(width, mid) if depthwise else ConvNormAct(width, mid, 3))
            width = mid
        self.conv_mid = nn.ModuleList(mids)
        self.conv_concat = ConvNormAct(cin + layers * mid, cout, 1)
        self.attn = EffectiveSE(cout) if ese else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]  # the concat sees the block input, not the reduced one
        h = x if self.conv_reduction is None else self.conv_reduction(x)
        for conv in self.conv_mid:
            h = conv(h)
            feats.append(h)
        y = self.conv_concat(torch.cat(feats, dim=1))
        if self.attn is not None:
            y = self.attn(y)
        return y + x if self.residual else y


class OsaStage(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, blocks: int, layers: int, downsample: bool,
                 residual: bool, depthwise: bool, ese: str):
        super().__init__()
        # ceil_mode: 56 -> 28 at 224² (27 without), as in every reference implementation.
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True) if downsample else None
        seq = []
        for i in range(blocks):
            use_ese = ese == "every" or (ese == "last" and i == blocks - 1)
            seq.append(OsaBlock(cin, mid, cout, layers, residual and i > 0, depthwise, use_ese))
            cin = cout
        self.blocks = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x if self.pool is None else self.pool(x))


class ClassifierHead(nn.Module):
    def __init__(self, cin: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))


# ---------------------------------------------------------------- model


@dataclass(frozen=True)
class VoVNetConfig:
    """One VoVNet variant. ``ese``: "none" (V1), "last" (timm) or "every" (detectron2)."""

    stem_chs: tuple[int, int, int]
    stage_chs: tuple[int, ...]
    concat_chs: tuple[int, ...]
    layer_per_block: int
    block_per_stage: tuple[int, ...]
    depthwise: bool = False
    residual: bool = False
    ese: str = "none"
    num_classes: int = 1000
    in_chans: int = 3
    img_size: int = 224
    stem_stride: int = 4  # 4: stem[0] and stem[2] stride 2 (the papers'); 2: stem[2] only; 1: none

    def __post_init__(self):
        if self.ese not in ESE_PLACEMENTS:
            raise EdgekitError("bad_config", f"VoVNet ese={self.ese!r} unknown; choose one of {ESE_PLACEMENTS}",
                               fix='pass ese="last" (timm), "every" (detectron2) or "none" (V1)')
        n = len(self.stage_chs)
        if not (len(self.concat_chs) == len(self.block_per_stage) == n) or len(self.stem_chs) != 3:
            raise EdgekitError(
                "bad_config",
                f"VoVNet needs 3 stem widths and one stage_ch/concat_ch/block count per stage; got "
                f"stem {self.stem_chs}, stage_chs {self.stage_chs}, concat_chs {self.concat_chs}, "
                f"block_per_stage {self.block_per_stage}",
                fix="give stage_chs, concat_chs and block_per_stage the same length",
            )
        if self.stem_stride not in (1, 2, 4):
            raise EdgekitError("bad_config", f"VoVNet stem_stride={self.stem_stride} unsupported; choose 1, 2 or 4",
                               fix="pass stem_stride=4 (the papers', for 224x224) or 1/2 for small inputs")
        sizes = (*self.stem_chs, *self.stage_chs, *self.concat_chs, *self.block_per_stage, self.layer_per_block,
                 self.num_classes, self.in_chans, self.img_size)
        if any(int(v) < 1 for v in sizes):
            raise EdgekitError("bad_config", f"VoVNet sizes must be positive, got {self}",
                               fix="use widths, counts and sizes >= 1")


class VoVNet(nn.Module):
    def __init__(self, cfg: VoVNetConfig):
        super().__init__()
        self.cfg = cfg
        s0, s1, s2 = cfg.stem_chs
        conv = SeparableConvNormAct if cfg.depthwise else (lambda a, b, stride=1: ConvNormAct(a, b, 3, stride))
        first, last = {4: (2, 2), 2: (1, 2), 1: (1, 1)}[cfg.stem_stride]
        self.stem = nn.Sequential(ConvNormAct(cfg.in_chans, s0, 3, first), conv(s0, s1), conv(s1, s2, stride=last))
        stages, cin = [], s2
        for i, (mid, cout, blocks) in enumerate(zip(cfg.stage_chs, cfg.concat_chs, cfg.block_per_stage)):
            stages.append(OsaStage(cin, mid, cout, blocks, cfg.layer_per_block, downsample=i > 0,
                                   residual=cfg.residual, depthwise=cfg.depthwise, ese=cfg.ese))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(cin, cfg.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Stem output and each stage's output (strides 4, 4, 8, 16, 32)."""
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def load_timm_state_dict(model: VoVNet, path: str | Path) -> VoVNet:
    """Load a timm-layout VoVNet checkpoint (.safetensors, .pth/.pt/.bin) from a local file.

    Module names here equal timm's, so keys map one to one; ``num_batches_tracked``
    may be absent, a ``state_dict``/``model`` wrapper is unwrapped. Missing or
    unexpected keys are an error naming them (a detectron2 checkpoint with eSE in
    every block needs ``ese="every"``).
    """
    path = Path(path)
    if not path.is_file():
        raise EdgekitError("file_not_found", f"checkpoint {str(path)!r} does not exist",
                           fix="pass the path of a local .safetensors or .pth file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    own = model.state_dict()
    state = {k.removeprefix("module."): v for k, v in state.items()}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    bad_shape = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
                 if k in own and v.shape != own[k].shape]
    if missing or unexpected or bad_shape:
        raise EdgekitError(
            "checkpoint_mismatch",
            f"{path.name} does not fit this VoVNet: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, shapes {bad_shape[:5]}",
            fix="build the variant the checkpoint was trained as (timm name in the variant table); "
            "ese='every' for detectron2 checkpoints; num_classes must match the head",
        )
    model.load_state_dict(state, strict=False)  # strict except for num_batches_tracked
    return model


# ---------------------------------------------------------------- variants

_V1 = dict(stem_chs=(64, 64, 128), layer_per_block=5)
_V2 = dict(residual=True, ese="last")
_WIDE = dict(stage_chs=(128, 160, 192, 224), concat_chs=(256, 512, 768, 1024))
_SLIM = dict(stage_chs=(64, 80, 96, 112), concat_chs=(112, 256, 384, 512))

# timm names in the comments: their checkpoints load with load_timm_state_dict.
cfgs: dict[str, dict] = {
    "vovnet27_slim": _V1 | dict(stage_chs=(64, 80, 96, 112), concat_chs=(128, 256, 384, 512),
                                block_per_stage=(1, 1, 1, 1)),
    "vovnet39": _V1 | _WIDE | dict(block_per_stage=(1, 1, 2, 2)),  # vovnet39a
    "vovnet57": _V1 | _WIDE | dict(block_per_stage=(1, 1, 4, 3)),  # vovnet57a
    "vovnet_v2_19_slim_dw": _V2 | _SLIM | dict(stem_chs=(64, 64, 64), layer_per_block=3,  # ese_vovnet19b_slim_dw
                                               block_per_stage=(1, 1, 1, 1), depthwise=True),
    "vovnet_v2_19_dw": _V2 | _WIDE | dict(stem_chs=(64, 64, 64), layer_per_block=3,  # ese_vovnet19b_dw
                                          block_per_stage=(1, 1, 1, 1), depthwise=True),
    "vovnet_v2_19_slim": _V2 | _SLIM | dict(stem_chs=(64, 64, 128), layer_per_block=3,  # ese_vovnet19b_slim
                                            block_per_stage=(1, 1, 1, 1)),
    "vovnet_v2_19": _V2 | _WIDE | dict(stem_chs=(64, 64, 128), layer_per_block=3,  # ese_vovnet19b
                                       block_per_stage=(1, 1, 1, 1)),
    "vovnet_v2_39": _V2 | _V1 | _WIDE | dict(block_per_stage=(1, 1, 2, 2)),  # ese_vovnet39b
    "vovnet_v2_57": _V2 | _V1 | _WIDE | dict(block_per_stage=(1, 1, 4, 3)),  # ese_vovnet57b
    "vovnet_v2_99": _V2 | _V1 | _WIDE | dict(block_per_stage=(1, 3, 9, 3)),  # ese_vovnet99b
    # ese_vovnet19b_slim (2.66M parameters) for 32x32 digits: stem stride 2, stages at 16 -> 8 -> 4 -> 2.
    "vovnet19_slim_digits": _V2 | _SLIM | dict(stem_chs=(64, 64, 128), layer_per_block=3,
                                               block_per_stage=(1, 1, 1, 1), num_classes=10, img_size=32,
                                               stem_stride=2),
    # Every V2 feature (identity, eSE, dw, ceil pooling at 8 -> 4 -> 2 -> 1) at digits size.
    "vovnet_tiny": dict(stem_chs=(16, 16, 16), stage_chs=(16, 24, 32, 40), concat_chs=(32, 48, 64, 80),
                        layer_per_block=2, block_per_stage=(1, 1, 2, 1), depthwise=False, residual=True,
                        ese="last", num_classes=10, img_size=32),
    "vovnet_tiny_dw": dict(stem_chs=(16, 16, 16), stage_chs=(16, 24, 32, 40), concat_chs=(32, 48, 64, 80),
                           layer_per_block=2, block_per_stage=(1, 1, 2, 1), depthwise=True, residual=True,
                           ese="last", num_classes=10, img_size=32),
}


def _create(name: str, **overrides) -> ModelSpec:
    cfg = VoVNetConfig(**(cfgs[name] | overrides))

    def build() -> VoVNet:
        model = VoVNet(cfg)
        seed_bn_stats(model)
        return model.eval()

    return image_classifier_spec(name, "vovnet", PAPER, build, cfg.img_size, cfg.in_chans)


register_family(cfgs, _create)
