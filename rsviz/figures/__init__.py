"""Pure plotly figure builders (one module per view) and the shared talk theme."""
