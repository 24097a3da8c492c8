"""Vote sampling engine: the central primitive of rsviz.

The smoothed classifier g_σ(x) = argmax_c P[f(x + σN) = c] and its practical Monte-Carlo
version g_{σ,n} (plurality of n noisy votes, ties broken at random) are both read from votes
of the base classifier f on noisy copies of x. The package has one module per concern:

- `noise`: seeded generators, Gaussian noise drawn in fixed chunks (batch-size independent);
- `batching`: f's forward pass (`forward`, the one function every vote goes through), the
  batch-size tuner, clean labels `forward_labels`;
- `votes`: `sample_votes` and the `VoteRecord` (p̂, Clopper–Pearson intervals, g_{σ,n} draws),
  and the sampler's speed probe `estimate_rate`;
- `lazy`: lazy exact votes that stop once the outcome is decided (`lazy_votes`, the general
  loop `lazy_sample`, and the threshold rule `lazy_threshold_votes`);
- `certify`: Cohen et al.'s PREDICT and CERTIFY.

Every public name is importable from `rsviz.smoothing` directly. docs/smoothing.md explains
the sampling and its measured speed.
"""

from rsviz.smoothing.batching import (BatchTuner, auto_batch_size, forward, forward_labels,
                                      precision_agreement)
from rsviz.smoothing.certify import CertifyResult, certify, predict, radius_from_votes
from rsviz.smoothing.lazy import (LazyVoteResult, lazy_sample, lazy_threshold_votes, lazy_votes,
                                  plurality_votes_needed, threshold_votes_needed)
from rsviz.smoothing.noise import NOISE_CHUNK, NoiseStream, make_generator, noisy_batch
from rsviz.smoothing.votes import (VoteRecord, clopper_pearson, estimate_rate,
                                   lower_confidence_bound, sample_votes)
from rsviz.theory import prob_wrong_binomial

__all__ = [
    "BatchTuner", "CertifyResult", "LazyVoteResult", "NOISE_CHUNK", "NoiseStream", "VoteRecord",
    "auto_batch_size", "certify", "clopper_pearson", "estimate_rate", "forward",
    "forward_labels", "lazy_sample", "lazy_threshold_votes", "lazy_votes",
    "lower_confidence_bound", "make_generator", "noisy_batch", "plurality_votes_needed",
    "precision_agreement", "predict", "prob_wrong_binomial", "radius_from_votes",
    "sample_votes", "threshold_votes_needed",
]
