"""CIFAR-10: class names, the normalisation of the randomized-smoothing literature, and two
32×32 architectures written here from their published layouts, so that checkpoints load with
the exact same state-dict keys:

- the CIFAR ResNet of Cohen et al.'s locuslab/smoothing (`archs/cifar_resnet.py`, depth 6k + 2
  with basic blocks: ResNet-20, ResNet-110), arch names `cifar_resnet<depth>`;
- the WideResNet of TRADES that RobustBench's CIFAR-10 entries use (`wide_resnet.py`: WRN-28-10
  "Standard", WRN-34-10), pre-activation blocks, arch names `cifar_wrn<depth>_<widen>`.

Layout (keys of the network itself): `conv1` (3→16, 3×3, no bias), `bn1`, three stages
`layer1..3` of k basic blocks each (16, 32, 64 channels; the first block of stages 2 and 3
strides 2 and projects the shortcut with `downsample.0` a 1×1 conv and `downsample.1` a batch
norm), each block `conv1, bn1, conv2, bn2` (3×3, no bias), an 8×8 average pool and `fc`
(64 → classes). The pool is fixed at 8×8, so the network takes 32×32 inputs only.
"""

from __future__ import annotations

import re

import torch
from torch import nn

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # as in Cohen et al.'s datasets.py
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR_SIZE = 32


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class CifarBasicBlock(nn.Module):
    """Two 3×3 conv + BN, ReLU between and after the residual sum."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = _conv3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                         nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class CifarResNet(nn.Module):
    """The CIFAR ResNet of depth 6k + 2 (k basic blocks per stage) used by Cohen et al."""

    def __init__(self, depth: int = 110, num_classes: int = 10) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"a CIFAR ResNet has depth 6k + 2 (20, 32, 44, 56, 110), not {depth}")
        blocks = (depth - 2) // 6
        self.depth = depth
        self.conv1 = _conv3(3, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        widths, cin, stages = (16, 32, 64), 16, []
        for i, width in enumerate(widths):
            layers = []
            for j in range(blocks):
                layers.append(CifarBasicBlock(cin, width, 2 if (i > 0 and j == 0) else 1))
                cin = width
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, num_classes)

    def extra_repr(self) -> str:
        return f"depth={self.depth}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class WrnBlock(nn.Module):
    """Pre-activation basic block of TRADES' WideResNet: bn1-relu-conv1-bn2-relu-conv2; when
    the width changes, the shortcut is a 1×1 conv of the *activated* input."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3(cin, cout, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = _conv3(cout, cout)
        self.relu = nn.ReLU()
        self.convShortcut = (nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
                             if cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.relu(self.bn1(x))
        out = self.conv2(self.relu(self.bn2(self.conv1(activated))))
        shortcut = x if self.convShortcut is None else self.convShortcut(activated)
        return shortcut + out


class _WrnStage(nn.Module):
    def __init__(self, blocks: int, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(*[WrnBlock(cin if i == 0 else cout, cout, stride if i == 0
                                              else 1) for i in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class CifarWideResNet(nn.Module):
    """WideResNet-depth-widen (depth 6k + 4) as in TRADES / RobustBench, inputs in [0, 1]."""

    def __init__(self, depth: int = 28, widen: int = 10, num_classes: int = 10) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"a WideResNet has depth 6k + 4 (16, 28, 34, 70), not {depth}")
        blocks, widths = (depth - 4) // 6, (16, 16 * widen, 32 * widen, 64 * widen)
        self.depth, self.widen = depth, widen
        self.conv1 = _conv3(3, 16)
        self.block1 = _WrnStage(blocks, widths[0], widths[1], 1)
        self.block2 = _WrnStage(blocks, widths[1], widths[2], 2)
        self.block3 = _WrnStage(blocks, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU()
        self.fc = nn.Linear(widths[3], num_classes)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, widen={self.widen}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = nn.functional.avg_pool2d(self.relu(self.bn1(out)), 8)
        return self.fc(torch.flatten(out, 1))


def wrn_shape(arch: str) -> tuple[int, int] | None:
    """(28, 10) for "cifar_wrn28_10", None for other names."""
    match = re.fullmatch(r"cifar_wrn(\d+)_(\d+)", arch)
    if not match:
        return None
    depth, widen = int(match.group(1)), int(match.group(2))
    return (depth, widen) if depth >= 10 and (depth - 4) % 6 == 0 and widen > 0 else None


def is_cifar_arch(arch: str) -> bool:
    """A 32×32 CIFAR architecture of this module (cifar_resnet<d>, cifar_wrn<d>_<w>)."""
    return cifar_resnet_depth(arch) is not None or wrn_shape(arch) is not None


def make_cifar_net(arch: str, num_classes: int = 10) -> nn.Module:
    depth = cifar_resnet_depth(arch)
    if depth is not None:
        return CifarResNet(depth, num_classes)
    shape = wrn_shape(arch)
    if shape is None:
        raise ValueError(f"not a CIFAR architecture: {arch!r}")
    return CifarWideResNet(*shape, num_classes=num_classes)


def cifar_label(arch: str) -> str | None:
    """"CIFAR ResNet-110", "WideResNet-28-10", or None."""
    depth, shape = cifar_resnet_depth(arch), wrn_shape(arch)
    if depth is not None:
        return f"CIFAR ResNet-{depth}"
    return f"WideResNet-{shape[0]}-{shape[1]}" if shape else None


def cifar_arch_of(state: dict[str, torch.Tensor]) -> str | None:
    """The CIFAR architecture a state dict's keys and shapes describe, or None."""
    depth = depth_from_state(state)
    if depth is not None:
        return f"cifar_resnet{depth}"
    fc = state.get("fc.weight")
    if "block1.layer.0.conv1.weight" in state and fc is not None and fc.ndim == 2:
        blocks = {int(k.split(".")[2]) for k in state if k.startswith("block1.layer.")}
        widen = int(fc.shape[1]) // 64
        return f"cifar_wrn{6 * (max(blocks) + 1) + 4}_{widen}"
    return None


def cifar_resnet_depth(arch: str) -> int | None:
    """110 for "cifar_resnet110" (Cohen et al.'s architecture names), None for other names."""
    if arch.startswith("cifar_resnet") and arch[len("cifar_resnet"):].isdigit():
        depth = int(arch[len("cifar_resnet"):])
        return depth if depth >= 8 and (depth - 2) % 6 == 0 else None
    return None


def depth_from_state(state: dict[str, torch.Tensor]) -> int | None:
    """The depth of a CIFAR ResNet state dict (6k + 2 from its k blocks per stage), or None
    when the keys are not that layout's."""
    if tuple(state.get("conv1.weight", torch.empty(0)).shape) != (16, 3, 3, 3):
        return None
    blocks = {int(k.split(".")[1]) for k in state if k.startswith("layer1.")}
    if not blocks or "layer4.0.conv1.weight" in state:
        return None
    return 6 * (max(blocks) + 1) + 2
