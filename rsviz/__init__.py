"""rsviz: a visual lab for randomized smoothing under attack.

The engine works in pixel space: every image tensor is in [0, 1]^{3xHxW} and the
normalisation of each model lives inside its wrapper. Importing rsviz never imports Streamlit.
"""

__version__ = "0.1.0"

# Views key their cache entries with their own VERSION (rsviz/views/); study tasks are keyed
# by their content (rsviz/study/tasks.py).
