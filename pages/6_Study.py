"""Study: certification curves and attacks over an image set (paper Fig. 4 and Fig. 5)."""

from __future__ import annotations

import hashlib

import streamlit as st

from rsviz.attacks.oracle import CRITERIA
from rsviz.cache import make_key
from rsviz.errors import ConfigError, RsvizError
from rsviz.figures.study import METRICS, certification_figure, distortion_figure, ratio_figure
from rsviz.imagesets import ImageSet, ImageSetSpec, from_zip
from rsviz.certification import CertificationConfig
from rsviz.study import (StudyPlan, StudyResults, default_results_dir,
                         open_results, parse_plan, run_study)
from ui.common import current, persist, remember, show_error, widget
from ui.export import export_panel
from ui.jobs import job_panel

st.title("Study over an image set")
st.caption("The paper's conclusions come from sets of images: certified accuracy against radius "
           "for each σ (Fig. 4) and the mean L2 distortion each attack needs against the accuracy "
           "of each defended classifier (Fig. 5). Every (image, configuration, attack) is an "
           "independent task stored as it finishes: a stopped run resumes where it was.")
state = current()


def numbers(text: str, kind: type, what: str) -> tuple:
    try:
        return tuple(kind(v) for v in text.replace(";", ",").split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{what}: write numbers separated by commas (got {text!r}).") from None


def attack_names() -> list[str]:
    try:
        from rsviz.attacks import REGISTRY
        return list(REGISTRY)
    except ImportError:
        return ["hsja", "surfree", "rays"]


def define_plan(model_name: str) -> StudyPlan:
    cols = st.columns(4)
    sigmas = numbers(widget(cols[0].text_input, "σ values", "study_sigmas", "0.25"), float, "σ")
    ns = numbers(widget(cols[1].text_input, "n values", "study_ns", "1, 10"), int, "n")
    p_as = numbers(widget(cols[2].text_input, "P_a values", "study_pas", "0.5"), float, "P_a")
    budget = int(widget(cols[3].number_input, "Queries per attack", "study_budget", 300,
                        min_value=10, max_value=100_000, step=50))
    cols = st.columns(4)
    names = attack_names()
    attacks = cols[0].multiselect("Attacks", names, key="study_attacks_w",
                                  default=[a for a in persist("study_attacks", names[:2]) if a in names],
                                  on_change=remember, args=("study_attacks",))
    criteria = cols[1].multiselect("Criteria", list(CRITERIA), key="study_criteria_w",
                                   default=persist("study_criteria", ["shortcut"]),
                                   on_change=remember, args=("study_criteria",),
                                   help="\n".join(f"- {k}: {v}" for k, v in CRITERIA.items()))
    seed = int(widget(cols[2].number_input, "Seed", "study_seed", 0, min_value=0, step=1))
    undefended = widget(cols[3].checkbox, "Also attack f (no smoothing)", "study_f", True)
    with st.expander("Certification (Cohen's CERTIFY per image and σ)"):
        cols = st.columns(4)
        certify_on = widget(cols[0].checkbox, "Certify", "study_cert", True)
        n0 = int(widget(cols[1].number_input, "n0", "study_n0", 64, min_value=1))
        n = int(widget(cols[2].number_input, "n", "study_cn", 512, min_value=1,
                       help="Cohen et al. use 100 000 (GPU); fewer votes give smaller radii."))
        alpha = float(widget(cols[3].number_input, "α", "study_alpha", 0.001, min_value=1e-6,
                             max_value=0.5, format="%.4f"))
    return StudyPlan(name="app", models=(model_name,), sigmas=sigmas, ns=ns,
                     criteria=tuple(criteria),
                     p_as=p_as, attacks=tuple(attacks), budget=budget, seed=seed,
                     include_undefended=undefended,
                     certify=CertificationConfig(n0=n0, n=n, alpha=alpha) if certify_on else None)


def choose_images(plan: StudyPlan, class_names: tuple[str, ...]) -> ImageSet:
    source = st.radio("Images", ["Sample photos", "Folder on the server", "Zip upload"],
                      horizontal=True, key="study_src_w", on_change=remember, args=("study_src",),
                      index=["Sample photos", "Folder on the server", "Zip upload"].index(
                          persist("study_src", "Sample photos")))
    cols = st.columns([3, 3, 1, 1])
    subset = int(widget(cols[2].number_input, "Subset (0 = all)", "study_subset", 0, min_value=0))
    subset_seed = int(widget(cols[3].number_input, "Subset seed", "study_subset_seed", 0,
                             min_value=0))
    if source == "Sample photos":
        spec = ImageSetSpec("samples", subset=subset or None, seed=subset_seed)
        return spec.resolve(class_names)
    if source == "Folder on the server":
        folder = widget(cols[0].text_input, "Folder", "study_folder", plan.images.folder or "")
        labels = widget(cols[1].text_input, "Labels file (optional)", "study_labels", "")
        if not folder:
            raise ConfigError("Give the path of an image folder on this server.")
        spec = ImageSetSpec("folder", folder, labels or None, subset or None, subset_seed)
        return spec.resolve(class_names)
    upload = cols[0].file_uploader("Zip of images + labels.csv", type=["zip"], key="study_zip")
    if upload is None:
        raise ConfigError("Upload a zip of images with a labels.csv (filename,class_index).")
    images = from_zip(upload.getvalue(), default_results_dir() / "uploads", name=upload.name,
                      class_names=class_names)
    return images.subset(subset or None, subset_seed)


def show(study: StudyResults, final: bool = True) -> None:
    """Fig. 5, Fig. 4, the ratio distribution and the tables of a (partial) study."""
    done = len(study.results)
    st.caption(f"{done} of {study.expected or done} tasks done · results in `{study.folder}`")
    summary, runs, ratios = study.summary(), study.certification(), study.ratios()
    export = export_panel if final else (lambda *a, **k: None)
    tabs = st.tabs(["Distortion vs accuracy (Fig. 5)", "Certification (Fig. 4)",
                    "Distortion / certified radius", "Tables"])
    with tabs[0]:
        metric = st.radio("Distortion", list(METRICS), format_func=METRICS.get, horizontal=True,
                          key=f"study_metric_{final}") if final else "mean_l2"
        if summary:
            fig = distortion_figure(summary, metric)
            st.plotly_chart(fig, use_container_width=True, key=f"study_fig5_{final}")
            export(fig, "study_distortion_vs_accuracy", summary, study.plan.to_dict(),
                   key="study_fig5")
        else:
            st.info("No attack finished yet.")
    with tabs[1]:
        if runs:
            fig = certification_figure(runs, study.plan.model)
            st.plotly_chart(fig, use_container_width=True, key=f"study_fig4_{final}")
            export(fig, "study_certified_accuracy", study.accuracy_drop(), study.plan.to_dict(),
                   key="study_fig4")
            st.dataframe(study.accuracy_drop(), hide_index=True)
        else:
            st.info("No certification yet (or the plan has none).")
    with tabs[2]:
        if ratios:
            fig = ratio_figure(ratios)
            st.plotly_chart(fig, use_container_width=True, key=f"study_ratio_{final}")
            export(fig, "study_ratio_to_radius", ratios, study.plan.to_dict(), key="study_ratio")
        else:
            st.info("Ratios need a successful attack on an image certified at that σ.")
    with tabs[3]:
        st.dataframe(summary, hide_index=True)
        if final:
            from rsviz.figures.export import data_to_csv
            st.download_button("Summary (CSV)", data_to_csv(summary) or "",
                               file_name="study_summary.csv", key="study_dl_summary")
            st.download_button("Every task (CSV)", data_to_csv(study.results) or "",
                               file_name="study_tasks.csv", key="study_dl_tasks")


mode = st.radio("Plan", ["Define here", "Load a plan file", "Open a results folder"],
                horizontal=True, key="study_mode_w", on_change=remember, args=("study_mode",),
                index=["Define here", "Load a plan file", "Open a results folder"].index(
                    persist("study_mode", "Define here")))
try:
    if mode == "Open a results folder":
        folder = widget(st.text_input, "Results folder (e.g. written by `python -m rsviz study`)",
                        "study_open", str(default_results_dir()))
        if st.button("Open", key="study_open_btn") or persist("study_opened", None) == folder:
            st.session_state.setdefault("rsviz_persist", {})["study_opened"] = folder
            show(open_results(folder))
    elif state.model is None:
        st.warning(state.model_error or "Choose a model in the sidebar.")
    else:
        model = state.model
        if mode == "Load a plan file":
            upload = st.file_uploader("Plan (YAML or JSON)", type=["yaml", "yml", "json"],
                                      key="study_plan_file")
            if upload is None:
                st.info("Upload a plan, e.g. examples/plan_small.yaml.")
                st.stop()
            plan = parse_plan(upload.getvalue().decode("utf-8"),
                              ".json" if upload.name.endswith(".json") else ".yaml")
            if plan.model != model.info.name:
                st.info(f"The plan names {plan.model}; it runs on that model, not the sidebar's.")
            images = (plan.images.resolve(model.info.class_names) if plan.model == model.info.name
                      else None)
        else:
            plan = define_plan(model.info.name)
            images = choose_images(plan, model.info.class_names)
        if images is not None:
            st.caption(f"{len(images)} image(s) from {images.source}"
                       + (f" · skipped: {'; '.join(images.notes)}" if images.notes else ""))
            fingerprint = [(e.ref, e.label) for e in images.entries]
        else:
            fingerprint = [plan.images]
        digest = hashlib.sha256(repr((plan.to_dict(), fingerprint)).encode()).hexdigest()[:12]
        out = default_results_dir() / "app" / f"{plan.name}-{plan.model}-{digest}"
        configs = plan.configurations()
        n_images = len(images) if images is not None else plan.images.subset or 0
        cost = n_images * (len(configs) * len(plan.attacks) * plan.budget * max(
            c.n or 1 for c in configs) + len(plan.sigmas) * ((plan.certify.n0 + plan.certify.n)
                                                             if plan.certify else 0))
        run_model = model if plan.model == model.info.name else None

        def work(job, plan=plan, images=images, out=out, run_model=run_model):
            return run_study(plan, out, model=run_model, images=images, device=state.device,
                             progress=job)

        def partial(results, plan=plan, out=out):
            show(StudyResults(plan, [{}] * n_images, list(results), str(out)), final=False)

        job_panel("study", f"study {plan.name}", work,
                  make_key("study-page", plan, fingerprint, str(out)),
                  lambda result, fresh: show(result), start_label="Run the study",
                  cost_note=(f"{len(configs)} configuration(s) × {len(plan.attacks)} attack(s) × "
                             f"{n_images} image(s); at most ~{cost:,} forward passes. "
                             f"Results go to `{out}`; a stopped run resumes there."),
                  render_partial=partial)
except RsvizError as exc:
    show_error(exc)
