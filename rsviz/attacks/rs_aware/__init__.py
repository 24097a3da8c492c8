"""RS-aware attacks: HSJA, SurFree and RayS told that the classifier is g_{σ,n}.

- `decisions`: the sequential test on repeated queries and eq. (4)'s level-P_a check;
- `noisy_oracle`: `NoiseAwareOracle`, the oracle view that decides by tests and reports only
  checked points;
- `attacks`: the three variants (registry variant "rs-aware", see `rsviz.attacks.REGISTRY`).
"""

from rsviz.attacks.rs_aware.decisions import SequentialTest, level_check_needed
from rsviz.attacks.rs_aware.noisy_oracle import NoiseAwareOracle, ProbeView

__all__ = ["NoiseAwareOracle", "ProbeView", "SequentialTest", "level_check_needed"]

# The revision of the RS-aware variants' results: bump it when an RS-aware run's result changes
# for the same parameters. It is the one counter of that change for the study's task ids
# (`rsviz.study.tasks`); the views' cache keys version it through `AttackRequest.VERSION`
# (torch-free, so it cannot import this), which must move with it, and `TheoryVsPracticeRequest`
# reads that. 2: the final push (NoiseAwareOracle.secure); 3: a stalled run still ends with its
# final check and push (`Stalled`).
RS_AWARE_REVISION = 3
