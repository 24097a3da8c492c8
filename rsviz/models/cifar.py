"""CIFAR-10: class names, the normalisation of the randomized-smoothing literature, and the
CIFAR ResNet of Cohen et al.'s locuslab/smoothing (`archs/cifar_resnet.py`, depth 6k + 2 with
basic blocks: ResNet-20, ResNet-110), written here from its published layout so that their
checkpoints load with the exact same state-dict keys.

Layout (keys of the network itself): `conv1` (3→16, 3×3, no bias), `bn1`, three stages
`layer1..3` of k basic blocks each (16, 32, 64 channels; the first block of stages 2 and 3
strides 2 and projects the shortcut with `downsample.0` a 1×1 conv and `downsample.1` a batch
norm), each block `conv1, bn1, conv2, bn2` (3×3, no bias), an 8×8 average pool and `fc`
(64 → classes). The pool is fixed at 8×8, so the network takes 32×32 inputs only.
"""

from __future__ import annotations

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
