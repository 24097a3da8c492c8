"""White-box minimal-L2 boundary point x_a ∈ ∂f (the paper's Fig. 1 starting point).

The base classifier's margin at x for the true class y is

    m(x) = logit_y(x) − max_{j≠y} logit_j(x),

positive where f(x) = y and negative where f is fooled; ∂f is its zero set. The attack is our
own implementation of DeepFool (Moosavi-Dezfooli et al., CVPR 2016) followed by a boundary
refinement in the spirit of FAB (Croce & Hein, ICML 2020): at the current boundary point the
boundary is linearised, x_o is projected onto that tangent plane, and the ray from x_o towards
the projection is searched for a closer boundary crossing. A minimal-L2 point satisfies
x_a − x_o ∥ −∇m(x_a), which is the stopping criterion (cosine close to 1). A final bisection
between a correctly classified point and an adversarial point on the same segment from x_o
brackets ∂f to `tol` (L2, pixel units).

All forward passes here run in fp32 (no autocast): gradients in bf16 are too coarse for a
bisection to 1e-3. The vote engine may use bf16 autocast on CPU, a tiny perturbation of f.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rsviz.errors import RsvizError
from rsviz.progress import NullProgress, Progress
from rsviz.models import Classifier

RAY_POINTS = 8  # points evaluated per batch in ray searches and bisections


class BoundaryNotFound(RsvizError):
    """The white-box attack found no adversarial point within its iterations."""


@dataclass(frozen=True, eq=False)
class BoundaryPoint:
    """A point on the base boundary ∂f close to x_o (minimal L2 up to the attack's accuracy).

    Attributes:
        x_a: [3,H,W] the adversarial end of the final bisection: f(x_a) ≠ y and a point
            classified y lies within `bracket` of it on the segment [x_o, x_a].
        x_o: [3,H,W] the original image.
        y: the class of x_o the margin refers to.
        distance: ‖x_a − x_o‖₂ (pixel units).
        normal: unit vector −∇m(x_a)/‖∇m(x_a)‖, pointing OUT of class y (towards the
            adversarial side); at a minimal-L2 point it equals (x_a − x_o)/‖x_a − x_o‖.
        grad_norm: ‖∇m(x_a)‖ (margin units per pixel unit).
        cos_angle: cosine between `normal` and x_a − x_o (1 at an exact local minimiser).
        label_adv: f(x_a), the class the attack reached.
        iterations: margin-gradient evaluations used.
        bracket: ‖x_out − x_in‖, distance between the two ends of the final bisection.
        forward_passes: forward passes spent (a gradient counts as one).
    """

    x_a: torch.Tensor
    x_o: torch.Tensor
    y: int
    distance: float
    normal: torch.Tensor
    grad_norm: float
    cos_angle: float
    label_adv: int
    iterations: int
    bracket: float
    forward_passes: int

    @property
    def direction(self) -> torch.Tensor:
        """u = (x_a − x_o)/‖x_a − x_o‖, the profile direction."""
        return (self.x_a - self.x_o) / max(self.distance, 1e-30)


def _logits(model: Classifier, x: torch.Tensor) -> torch.Tensor:
    batch = x if x.dim() == 4 else x[None]
    return model(batch.to(device=model.device, dtype=torch.float32)).float()


def margin(model: Classifier, x: torch.Tensor, y: int, other: int | None = None) -> torch.Tensor:
    """m(x) = logit_y(x) − max_{j≠y} logit_j(x) for [3,H,W] or [B,3,H,W] inputs -> [B].

    With `other` the runner-up is fixed: m_j(x) = logit_y(x) − logit_other(x), a smooth
    function wherever the network is (used for curvature, where the runner-up must not switch).
    Differentiable; runs in fp32 without autocast.
    """
    logits = _logits(model, x)
    if other is not None:
        return logits[:, y] - logits[:, other]
    rest = logits.clone()
    rest[:, y] = -math.inf
    return logits[:, y] - rest.max(1).values


def margin_grad(model: Classifier, x: torch.Tensor, y: int,
                other: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(m(x) [B], ∇m(x) with the shape of x); see `margin`."""
    with torch.inference_mode(False), torch.enable_grad():
        xs = x.detach().to(device=model.device, dtype=torch.float32).clone().requires_grad_(True)
        values = margin(model, xs, y, other)
        (grad,) = torch.autograd.grad(values.sum(), xs)
    return values.detach(), grad.detach()


def predict_labels(model: Classifier, xs: torch.Tensor) -> torch.Tensor:
    """f's labels (fp32, no noise) of [B,3,H,W] points, on the model's device."""
    with torch.inference_mode():
        return _logits(model, xs).argmax(1)


class _Counter:
    def __init__(self, model: Classifier, y: int) -> None:
        self.model, self.y, self.passes = model, y, 0

    def adversarial(self, xs: torch.Tensor) -> torch.Tensor:
        self.passes += len(xs)
        return predict_labels(self.model, xs) != self.y

    def grad(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        self.passes += 1
        value, grad = margin_grad(self.model, x[None], self.y)
        return float(value[0]), grad[0]


def _bisect(counter: _Counter, x_o: torch.Tensor, end: torch.Tensor, s_in: float, s_out: float,
            tol: float) -> tuple[float, float]:
    """Shrink [s_in, s_out] on the segment x_o + s (end − x_o) until its length ≤ tol (L2)."""
    length = float((end - x_o).norm())
    while (s_out - s_in) * length > tol:
        s = torch.linspace(s_in, s_out, RAY_POINTS + 2, device=x_o.device)[1:-1]
        xs = x_o[None] + s.view(-1, 1, 1, 1) * (end - x_o)[None]
        adv = counter.adversarial(xs).cpu()
        hits = torch.nonzero(adv).flatten()
        if len(hits) == 0:
            s_in = float(s[-1])
        else:
            first = int(hits[0])
            s_out = float(s[first])
            if first > 0:
                s_in = float(s[first - 1])
    return s_in, s_out


def _first_crossing(counter: _Counter, x_o: torch.Tensor, end: torch.Tensor) -> float | None:
    """Smallest s in {1/K, ..., 1} where x_o + s (end − x_o) is adversarial, or None."""
    s = torch.linspace(0, 1, RAY_POINTS + 1, device=x_o.device)[1:]
    xs = x_o[None] + s.view(-1, 1, 1, 1) * (end - x_o)[None]
    hits = torch.nonzero(counter.adversarial(xs).cpu()).flatten()
    return None if len(hits) == 0 else float(s[int(hits[0])])


def find_boundary_point(model: Classifier, x_o: torch.Tensor, y: int | None = None,
                        max_iter: int = 100, tol: float = 1e-3,
                        generator: torch.Generator | None = None,
                        progress: Progress | None = None, overshoot: float = 0.02,
                        angle_tol: float = 1e-4, clip: bool = True) -> BoundaryPoint:
    """Minimal-L2 point x_a on ∂f near x_o: DeepFool, FAB-like refinement, final bisection.

    Args:
        model: base classifier f on pixel space.
        x_o: [3,H,W] image in [0,1].
        y: reference class (default f(x_o)); the attack looks for f(x) ≠ y.
        max_iter: margin-gradient evaluations allowed (both phases together).
        tol: length of the final bisection bracket, L2 in pixel units.
        generator: draws a random start direction when the gradient vanishes (flat region).
        progress: receives (iteration, max_iter) and is polled for cancellation.
        overshoot: relative DeepFool overshoot (and extra length of ray searches).
        angle_tol: stop refining when 1 − cos(normal, x_a − x_o) < angle_tol.
        clip: keep every iterate inside the pixel box [0,1]^d (images stay valid); False for
            analytic models whose boundary lies outside the box.

    Raises:
        BoundaryNotFound: no adversarial point was reached (e.g. a constant classifier).
    """
    progress = progress or NullProgress()
    x_o = x_o.detach().to(device=model.device, dtype=torch.float32)
    if y is None:
        y = int(predict_labels(model, x_o[None])[0])
    counter = _Counter(model, y)
    box = (lambda z: z.clamp(0, 1)) if clip else (lambda z: z)
    if bool(counter.adversarial(x_o[None])[0]):
        raise BoundaryNotFound(f"x_o is not classified as class {y}: nothing to attack.")
    iterations = 0
    # --- phase 1: DeepFool on the margin until f(x) ≠ y
    x = x_o.clone()
    found = False
    while iterations < max_iter:
        progress.check_cancel()
        value, grad = counter.grad(x)
        iterations += 1
        progress.report(iterations, max_iter, "white-box attack: DeepFool")
        if value < 0:
            found = True
            break
        norm2 = float((grad * grad).sum())
        if not math.isfinite(norm2) or norm2 < 1e-24:
            step = torch.randn(x.shape, generator=generator, device="cpu").to(x.device)
            x = box(x + 0.05 * step / step.norm())
            continue
        x = box(x - grad * ((value / norm2) * (1 + overshoot) + 1e-4 / math.sqrt(norm2)))
    if not found:
        raise BoundaryNotFound(f"No adversarial point found in {max_iter} DeepFool iterations.")
    end = x
    s_in, s_out = _bisect(counter, x_o, end, 0.0, 1.0, max(tol, 1e-3 * float((end - x_o).norm())))
    # --- phase 2: project x_o onto the tangent plane at the boundary point, search the new ray
    blend = 1.0
    while iterations < max_iter:
        progress.check_cancel()
        x_b = x_o + s_out * (end - x_o)
        dist = float((x_b - x_o).norm())
        value, grad = counter.grad(x_b)
        iterations += 1
        progress.report(iterations, max_iter, f"white-box attack: refining, ‖x_a − x_o‖ = {dist:.4f}")
        norm = float(grad.norm())
        if norm < 1e-12:
            break
        cos = float(-(grad * (x_b - x_o)).sum()) / (norm * dist)
        if 1 - cos < angle_tol:
            break
        # projection of x_o onto {x : m(x_b) + ∇m·(x − x_b) = 0}
        x_p = x_o - grad * ((value + float((grad * (x_o - x_b)).sum())) / norm ** 2)
        target = x_b + blend * (x_p - x_b)
        offset = target - x_o
        if float(offset.norm()) < 1e-12:
            break
        new_end = box(x_o + offset * (dist * (1 + overshoot) / float(offset.norm())))
        s = _first_crossing(counter, x_o, new_end)
        if s is not None:
            lo, hi = _bisect(counter, x_o, new_end, s - 1 / RAY_POINTS, s, max(tol, 1e-3 * dist))
            if hi * float((new_end - x_o).norm()) < dist:
                end, s_in, s_out = new_end, lo, hi
                blend = min(1.0, blend * 2)
                continue
        blend /= 2
        if blend < 1e-3:
            break
    # --- final bisection to tol
    s_in, s_out = _bisect(counter, x_o, end, s_in, s_out, tol)
    x_in = x_o + s_in * (end - x_o)
    x_a = x_o + s_out * (end - x_o)
    value, grad = counter.grad(x_a)
    norm = float(grad.norm())
    distance = float((x_a - x_o).norm())
    normal = -grad / max(norm, 1e-30)
    cos = float((normal * (x_a - x_o)).sum()) / max(distance, 1e-30)
    label_adv = int(predict_labels(model, x_a[None])[0])
    counter.passes += 1
    return BoundaryPoint(x_a=x_a, x_o=x_o, y=y, distance=distance, normal=normal, grad_norm=norm,
                         cos_angle=cos, label_adv=label_adv, iterations=iterations,
                         bracket=float((x_a - x_in).norm()), forward_passes=counter.passes)
