"""Dichotomy (binary search) on a segment against the random classifier g_{σ,n} (paper Fig. 3).

A decision-based attack locates the boundary on [A, B] (A classified y, B adversarial) by
bisection: k times, query the midpoint; an adversarial answer moves B there, else A. Against
f the output is one point; against g_{σ,n} each answer is a fresh random vote, so the output is
a random variable that spreads around the ideal boundary ∂g_σ as n shrinks.

Two ways to draw it (docs/dichotomy.md, "How it is computed"):
- live: every query of every trial is a fresh lazy exact vote of g_{σ,n} on the model
  (`rsviz.smoothing.lazy_votes`), counting forward passes;
- simulated: measure the class frequencies p̂(t) along the segment once (`sample_votes` on a
  grid of t with N samples) and simulate every query from them. Because g_{σ,n}(x) depends on x
  only through p(x), this is exact up to the error of p̂ and of its linear interpolation in t.
  Thousands of trials for several n cost the one segment pass.

Positions are fractions t ∈ [0, 1] of the segment x_t = A + t (B − A); `DichotomyResult`
converts them to L2 distances from A in pixel space.

Modules: `config` (DichotomyConfig), `bisection` (pure bisection and its exact law), `law`
(the measured segment and the answers of g_{σ,n}), `run` (`run_dichotomy`), `segment`
(choosing [A, B]). Every public name is importable from `rsviz.dichotomy` directly.
"""

from rsviz.dichotomy.bisection import FINE_STEPS, bisect, crossing, exact_output_distribution
from rsviz.dichotomy.config import DichotomyConfig, Fit, Method, Output
from rsviz.dichotomy.law import (SegmentProfile, base_answer, fit_probit, live_answer,
                                 measure_segment, prob_wrong_at, segment_points,
                                 simulated_answer, with_p_y)
from rsviz.dichotomy.run import (DichotomyResult, DichotomyRun, crossing_std, run_dichotomy,
                                 run_live)
from rsviz.dichotomy.segment import (Segment, segment_by_line_search, segment_past_whitebox,
                                     segment_random, segment_towards)

__all__ = ["DichotomyConfig", "DichotomyResult", "DichotomyRun", "FINE_STEPS", "Fit", "Method",
           "Output", "Segment", "SegmentProfile", "base_answer", "bisect", "crossing",
           "crossing_std", "exact_output_distribution", "fit_probit", "live_answer",
           "measure_segment", "prob_wrong_at", "run_dichotomy", "run_live", "segment_by_line_search",
           "segment_past_whitebox", "segment_points", "segment_random", "segment_towards",
           "simulated_answer", "with_p_y"]
