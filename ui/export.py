"""Download buttons for a figure and the data behind it."""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
import streamlit as st


def export_panel(fig: go.Figure, name: str, data: dict[str, Any] | None = None,
                 params: dict[str, Any] | None = None, key: str | None = None) -> None:
    """Offer the figure (interactive HTML) and its data + parameters (JSON) for download."""
    key = key or name
    cols = st.columns(2)
    html = fig.to_html(include_plotlyjs="cdn", full_html=True)
    cols[0].download_button("Figure (HTML)", html, file_name=f"{name}.html", mime="text/html",
                            key=f"dl_html_{key}")
    payload = json.dumps({"params": params or {}, "data": data or {}}, default=str, indent=1)
    cols[1].download_button("Data + parameters (JSON)", payload, file_name=f"{name}.json",
                            mime="application/json", key=f"dl_json_{key}")
