"""Study: certification curves and attacks over an image set (paper Fig. 4 and Fig. 5).

Recipe: plan (form, file or folder) + image set -> StudyRequest (rsviz.views.study) ->
background job writing one file per task into the results folder (what `rsviz study` writes
and resumes) -> figures and tables (ui/study.py).
"""

from __future__ import annotations

import streamlit as st

from rsviz.errors import RsvizError
from rsviz.jobs import format_eta
from rsviz.models import default_sigma
from rsviz.study import StudyResults, default_results_dir, open_many, parse_plan
from rsviz.views.base import measured_rate
from rsviz.views.study import request_for, results_name
from ui.common import choice, current, persist, show_error, widget
from ui.jobs import CONFIRM_ABOVE_S, job_panel
from ui.study import choose_images, choose_runner, define_plan, show

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
        text = widget(st.text_area, "Results folder(s), one per line (e.g. written by "
                      "`python -m rsviz study`; several are drawn together, e.g. one per model)",
                      "study_open", str(default_results_dir()), height=90)
        folders = [line.strip() for line in text.splitlines() if line.strip()]
        if st.button("Open", key="study_open_btn") or persist("study_opened", None) == text:
            st.session_state.setdefault("rsviz_persist", {})["study_opened"] = text
            show(open_many(folders))
    elif state.model is None:
        st.warning(state.model_error or "Choose a model in the sidebar.")
    else:
        model = state.model
        own = {model.info.name, model.info.model_id}  # how a plan may name the sidebar model
        if mode == "Load a plan file":
            upload = st.file_uploader("Plan (YAML or JSON)", type=["yaml", "yml", "json"],
                                      key="study_plan_file")
            if upload is None:
                st.info("Upload a plan, e.g. examples/plan_small.yaml.")
                st.stop()
            plan = parse_plan(upload.getvalue().decode("utf-8"),
                              ".json" if upload.name.endswith(".json") else ".yaml")
            same = bool(own & set(plan.models))
            if not same:
                st.info(f"The plan names {', '.join(plan.models)}; it runs on "
                        f"{'that model' if len(plan.models) == 1 else 'those models'}, "
                        "not the sidebar's.")
            images = plan.images.resolve(model.info.class_names) if same else None
        else:
            plan = define_plan(model.info.name, *default_sigma(model.info))
            images = choose_images(plan, model.info.class_names)
        if images is not None:
            st.caption(f"{len(images)} image(s) from {images.source}"
                       + (f" · skipped: {'; '.join(images.notes)}" if images.notes else ""))
        runner, address = choose_runner()
        run_model = model if own & set(plan.models) else None
        request = request_for(plan, "", model=run_model, images=images,
                              device=state.device.type)
        out = default_results_dir() / "app" / results_name(plan, run_model, request.key())
        request = request_for(plan, str(out), model=run_model, images=images,
                              device=state.device.type, runner=runner, address=address)
        cost = request.cost()
        rate = measured_rate(model)
        eta = cost.passes / rate
        n_images = request.n_images()
        models = len(plan.models)

        def partial(results, plan=plan, out=out):
            show(StudyResults(plan, [{}] * n_images, list(results), str(out)), final=False)

        job_panel("study", f"study {plan.name}", lambda job: request.run(run_model, None, job),
                  request.key(), lambda result, fresh: show(result),
                  start_label="Run the study", render_partial=partial,
                  cost_note=(f"{len(plan.configurations())} configuration(s) × "
                             f"{len(plan.attacks)} attack(s) × {n_images} image(s)"
                             + (f" × {models} models" if models > 1 else "")
                             + f": {cost.describe()}, ≈ {format_eta(eta)} at most at "
                             f"{rate:,.0f} passes/s (the rate measured on this model, one "
                             "process). Results go to "
                             f"`{out}`; a stopped run resumes there, under any runner."),
                  confirm=(f"{cost.describe()}, ≈ {format_eta(eta)} at most"
                           if eta > CONFIRM_ABOVE_S else ""))
except RsvizError as exc:
    show_error(exc)
