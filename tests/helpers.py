"""Test helpers importable from test modules."""

from tests.conftest import make_app  # noqa: F401


def random_batchnorm(net, weight: bool = False, bias: bool = False):
    """Give every BatchNorm2d of `net` non-trivial statistics (and affine parameters when
    asked), drawn from torch's global generator, so a replica's eval mode matters; returns
    `net`. Draw order per layer: mean, var, weight, bias."""
    import torch

    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                if weight:
                    module.weight.uniform_(0.5, 1.5)
                if bias:
                    module.bias.uniform_(-0.1, 0.1)
    return net
