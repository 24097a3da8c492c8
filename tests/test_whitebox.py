"""White-box boundary point: analytic projection on linear_toy, ∂f within tol on tiny_cnn."""

from __future__ import annotations

import pytest
import torch

from rsviz.models import BallClassifier, Classifier, ModelInfo
from rsviz.whitebox import BoundaryNotFound, find_boundary_point, margin, margin_grad, predict_labels


def test_linear_toy_boundary_point_is_the_analytic_projection(linear_model):
    x_o = torch.full((3, 32, 32), 0.5)
    net = linear_model.net
    bp = find_boundary_point(linear_model, x_o, tol=1e-4)
    projection = x_o.flatten() - (net.score(x_o[None])[0] / net.w.norm() ** 2) * net.w
    assert abs(bp.distance - 0.2) < 2e-4  # make_linear_toy puts ∂f at 0.2 from grey
    assert float((bp.x_a.flatten() - projection).norm()) < 2e-4
    assert bp.bracket <= 1e-4 and bp.label_adv == 1 and bp.y == 0
    assert float((bp.normal.flatten() - net.w / net.w.norm()).norm()) < 1e-5  # points out of y
    assert bp.cos_angle > 1 - 1e-6


def test_tiny_cnn_lands_on_the_boundary_within_tol(tiny_model):
    x_o = torch.rand((3, 32, 32), generator=torch.Generator().manual_seed(1))
    tol = 1e-3
    bp = find_boundary_point(tiny_model, x_o, tol=tol, max_iter=40)
    y = int(predict_labels(tiny_model, x_o[None])[0])
    assert bp.y == y and bp.label_adv != y
    assert int(predict_labels(tiny_model, bp.x_a[None])[0]) != y
    # the point tol before x_a on the segment from x_o is still classified y
    inside = bp.x_a - tol * bp.direction
    assert int(predict_labels(tiny_model, inside[None])[0]) == y
    assert bp.bracket <= tol
    assert abs(float((bp.x_a - x_o).norm()) - bp.distance) < 1e-5
    assert abs(float(bp.normal.norm()) - 1) < 1e-5
    assert bp.cos_angle > 0.95  # near a local minimum of the distance
    # the refinement beats the first DeepFool crossing
    first = find_boundary_point(tiny_model, x_o, tol=tol, angle_tol=2.0)  # DeepFool only
    assert bp.distance <= first.distance + tol
    assert float(bp.x_a.min()) >= 0 and float(bp.x_a.max()) <= 1


def test_ball_boundary_point_is_radial():
    d = 3 * 16 * 16
    center = torch.full((d,), 0.5)
    info = ModelInfo("ball", "ball-test", 16, 16, (0.0,) * 3, (1.0,) * 3, ("in", "out"), "test")
    model = Classifier(BallClassifier(center, 2.0, logit_scale=10.0), info, normalize=False)
    direction = torch.randn(d, generator=torch.Generator().manual_seed(0))
    x_o = (center + 0.5 * direction / direction.norm()).view(3, 16, 16)
    bp = find_boundary_point(model, x_o, tol=1e-4, clip=False)
    assert abs(bp.distance - 1.5) < 2e-4
    assert bp.cos_angle > 1 - 1e-6


def test_margin_and_gradient_agree_with_finite_differences(tiny_model):
    x = torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(2))
    values, grad = margin_grad(tiny_model, x, 3)
    assert torch.allclose(values, margin(tiny_model, x, 3).detach())
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    v = v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    h = 1e-3
    fd = (margin(tiny_model, x + h * v, 3) - margin(tiny_model, x - h * v, 3)) / (2 * h)
    assert torch.allclose(fd.detach(), (grad * v).flatten(1).sum(1), rtol=1e-2, atol=1e-3)


def test_constant_classifier_raises():
    info = ModelInfo("const", "const", 8, 8, (0.0,) * 3, (1.0,) * 3, ("a", "b"), "test")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.copy_(torch.tensor([1.0, 0.0]))
    model = Classifier(net, info, normalize=False)
    with pytest.raises(BoundaryNotFound):
        find_boundary_point(model, torch.full((3, 8, 8), 0.5), max_iter=5,
                            generator=torch.Generator().manual_seed(0))
