"""rsviz — a visual lab for randomized smoothing under attack.

Router: `st.navigation` over the files in pages/ (sorted by their numeric prefix), with the
shared sidebar (image, model, σ, n, device) drawn before the page runs.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import streamlit as st

from ui.common import show_error, sidebar
from ui.export import page_pack_button

PAGES_DIR = Path(__file__).resolve().parent / "pages"
ICONS = {"Image": ":material/image:", "Boundary": ":material/grid_on:",
         "Profile": ":material/show_chart:", "Dichotomy": ":material/bar_chart:",
         "Live": ":material/bolt:", "Study": ":material/table_chart:",
         "Jobs": ":material/list:"}


def page_title(path: Path) -> str:
    """'3_Profile_and_SORM.py' -> 'Profile and SORM'."""
    stem = re.sub(r"^\d+_", "", path.stem)
    return stem.replace("_and_", " & ").replace("_", " ")


def url_path(path: Path) -> str:
    """'2_Boundary_slice.py' -> 'boundary_slice'. Not the name Streamlit's pages/ discovery
    gives the file ('Boundary_slice'): with equal names a rerun ran the page file alone,
    without app.py's sidebar. A deep link's first load shows Streamlit's "Page not found"
    notice over the right page (streamlit issue 8860); Escape closes it."""
    return re.sub(r"^\d+_", "", path.stem).lower()


def main() -> None:
    st.set_page_config(page_title="rsviz — randomized smoothing under attack",
                       page_icon=":material/blur_on:", layout="wide")
    logging.basicConfig(level=logging.INFO)
    pages = []
    for i, path in enumerate(sorted(PAGES_DIR.glob("[0-9]*.py"))):
        title = page_title(path)
        icon = next((v for k, v in ICONS.items() if title.startswith(k)), None)
        pages.append(st.Page(str(path), title=title, icon=icon, default=(i == 0),
                             url_path=url_path(path)))
    nav = st.navigation(pages)
    st.sidebar.title("rsviz")
    st.sidebar.caption("Randomized smoothing under attack: theory vs practice")
    try:  # the sidebar too: whatever it or the page lets through is one message
        sidebar()
        nav.run()
    except Exception as exc:  # noqa: BLE001 - the app shows one message, never a traceback
        logging.getLogger("rsviz.app").exception("page %s failed", nav.title)
        show_error(exc)
    page_pack_button(re.sub(r"\W+", "_", nav.title).strip("_").lower() or "figures")


main()
