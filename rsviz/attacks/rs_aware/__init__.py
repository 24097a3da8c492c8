"""RS-aware attacks: HSJA, SurFree and RayS told that the classifier is g_{σ,n}.

- `decisions`: the sequential test on repeated queries and eq. (4)'s level-P_a check;
- `noisy_oracle`: `NoiseAwareOracle`, the oracle view that decides by tests and reports only
  checked points;
- `attacks`: the three variants (registry variant "rs-aware", see `rsviz.attacks.REGISTRY`).

The revision of their results (study task ids, the views' cache keys) is
`rsviz.config.RS_AWARE_REVISION`: torch-free, so the views read it too.
"""

from rsviz.attacks.rs_aware.decisions import SequentialTest, level_check_needed
from rsviz.attacks.rs_aware.noisy_oracle import NoiseAwareOracle, ProbeView

__all__ = ["NoiseAwareOracle", "ProbeView", "SequentialTest", "level_check_needed"]

