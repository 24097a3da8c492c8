"""2D slices of image space around x_o, with and without smoothing (paper Fig. 2).

A slice is the plane x(u, v) = x_o + u·e1 + v·e2 (e1, e2 orthonormal, Gram–Schmidt), sampled
on a G×G grid u, v ∈ [−E, E] (E in L2 units of [0, 1]^d). Points are NOT clipped to the
image cube unless `clip=True` (the paper does not clip; neither does Cohen et al.'s noise).

From one vote pass (N noisy samples per point, `rsviz.smoothing.sample_votes`) it derives:
f's labels; the ideal g_σ labels (top class of the votes) with p̂_y; one realisation of
g_{σ,n} per chosen n (the plurality of the first n of the same N votes, so several n share
one pass); P[g_{σ,n}(x) ≠ y] by the two-class binomial law from p̂_y; y = g_σ(x_o).

Two ways to spend the forward passes (`mode`):
- "dense": N votes at every grid point (G²·N passes), the reference;
- "adaptive" (`rsviz.slices.adaptive`, docs/slices.md): a coarse-to-fine grid with n0 votes per
  visited point; cells whose corners agree unanimously (and where f agrees) are filled without
  sampling; a point keeps doubling its votes (up to N) only until a sequential sign test
  decides its top class.

Modules: `config` (SliceConfig, cost estimate), `plane` (directions, extent), `grid` (the
working state and vote sampler), `adaptive`, `compute` (`compute_slice`), `result`
(SliceResult), `memory` (votes held in bounded blocks at any G and N; a slice whose maps
cannot fit is refused up front). Every public name is importable from `rsviz.slices` directly.
"""

from rsviz.slices.adaptive import decided, sample_adaptive
from rsviz.slices.compute import compute_slice, sample_dense
from rsviz.slices.config import DIRECTIONS, Direction, Mode, SliceConfig, estimate_passes
from rsviz.slices.grid import Meter, SliceState, realisation, top_two
from rsviz.slices.plane import Plane, auto_extent, gram_schmidt, make_plane
from rsviz.slices.result import SliceResult, agreement

__all__ = ["DIRECTIONS", "Direction", "Meter", "Mode", "Plane", "SliceConfig", "SliceResult",
           "SliceState", "agreement", "auto_extent", "compute_slice", "decided",
           "estimate_passes", "gram_schmidt", "make_plane", "realisation",
           "sample_adaptive", "sample_dense", "top_two"]
