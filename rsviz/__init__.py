"""rsviz: a visual lab for randomized smoothing under attack.

The engine works in pixel space: every image tensor is in [0, 1]^{3xHxW} and the
normalisation of each model lives inside its wrapper. Importing rsviz never imports Streamlit.
"""

__version__ = "0.1.0"

# Bumped whenever a change in the engine changes cached results.
ENGINE_VERSION = "2"  # 2: sequential adaptive slices, HSJA float32 floor on θ
