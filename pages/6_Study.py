"""Study: certification curves and attacks over an image set (paper Fig. 4 and Fig. 5).

Recipe: plan (form, file or folder) + image set -> StudyRequest (`app_request` in
rsviz.views.study: the results folder is named by the request's key) -> background job writing
one file per task into that folder (what `rsviz study` writes and resumes) -> figures and
tables (ui/study.py, `study_panel`).
"""

from __future__ import annotations

import streamlit as st

from rsviz.errors import RsvizError
from rsviz.models import default_sigma
from rsviz.study import default_results_dir
from rsviz.views.study import app_request, names_model
from ui.common import choice, current, show_error
from ui.study import (choose_images, choose_runner, define_plan, load_plan, open_folders,
                      study_panel)

st.title("Study over an image set")
st.caption("The paper's conclusions come from sets of images: certified accuracy against radius "
           "for each σ (Fig. 4) and the mean L2 distortion each attack needs against the accuracy "
           "of each defended classifier (Fig. 5). Every (image, configuration, attack) is an "
           "independent task stored as it finishes: a stopped run resumes where it was.")
state = current()
mode = choice(st.radio, "Plan", "study_mode",
              ["Define here", "Load a plan file", "Open a results folder"], "Define here",
              horizontal=True)
try:
    if mode == "Open a results folder":
        open_folders()
    elif state.model is None:
        st.warning(state.model_error or "Choose a model in the sidebar.")
    else:
        model = state.model
        if mode == "Load a plan file":
            plan, images = load_plan(model)
        else:
            plan = define_plan(model.info.name, *default_sigma(model.info))
            images = choose_images(plan, model.info.class_names)
        if images is not None:
            st.caption(f"{len(images)} image(s) from {images.source}"
                       + (f" · skipped: {'; '.join(images.notes)}" if images.notes else ""))
        runner, address = choose_runner()
        run_model = model if names_model(plan, model) else None
        request = app_request(plan, default_results_dir() / "app", model=run_model,
                              images=images, device=state.device.type, runner=runner,
                              address=address)
        study_panel(request, model, run_model)
except RsvizError as exc:
    show_error(exc)
