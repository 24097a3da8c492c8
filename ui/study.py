"""Panels of the "Study" page: the plan form, the image set, Fig. 4 / Fig. 5 and tables."""

from __future__ import annotations

from typing import Any

import streamlit as st

from rsviz.attacks.oracle import CRITERIA
from rsviz.errors import ConfigError
from rsviz.figures.study import METRICS, certification_figure, distortion_figure, ratio_figure
from rsviz.imagesets import ImageSet, ImageSetSpec, from_zip
from rsviz.certification import (DEFAULT_RADII, CertificationConfig, TsvAnalysis, analyze_rows,
                                 analyze_tsv, read_tsv, sigma_of)
from rsviz.progress import format_eta
from rsviz.study import StudyPlan, StudyResults, default_results_dir, open_many, parse_plan
from rsviz.views.study import names_model
from ui.common import choice, keep, persist, several, widget
from ui.export import export_panel
from ui.jobs import CONFIRM_ABOVE_S, job_panel


def numbers(text: str, kind: type, what: str) -> tuple:
    try:
        return tuple(kind(v) for v in text.replace(";", ",").split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{what}: write numbers separated by commas (got {text!r}).") from None


def attack_names() -> list[str]:
    from rsviz.attacks import REGISTRY

    return list(REGISTRY)


def define_plan(model_name: str, sigma: float = 0.25, sigma_why: str = "") -> StudyPlan:
    """The plan form; its σ starts at `sigma`, the model's default (`default_sigma`)."""
    cols = st.columns(4)
    sigmas = numbers(widget(cols[0].text_input, "σ values", "study_sigmas", f"{sigma:g}",
                            help=f"Default {sigma_why}." if sigma_why else None), float, "σ")
    ns = numbers(widget(cols[1].text_input, "n values", "study_ns", "1, 10"), int, "n")
    p_as = numbers(widget(cols[2].text_input, "P_a values", "study_pas", "0.5"), float, "P_a")
    budget = int(widget(cols[3].number_input, "Queries per attack", "study_budget", 300,
                        min_value=10, max_value=100_000, step=50))
    cols = st.columns(4)
    names = attack_names()
    attacks = several(cols[0].multiselect, "Attacks", "study_attacks", names, names[:2])
    criteria = several(cols[1].multiselect, "Criteria", "study_criteria", list(CRITERIA),
                       ["shortcut"], help="\n".join(f"- {k}: {v}" for k, v in CRITERIA.items()))
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
                     certify=CertificationConfig(n0=n0, n=n, alpha=alpha) if certify_on
                     else None)


RUNNER_CHOICES = {"This process": "local", "Ray on this machine": "ray",
                  "Ray cluster (address)": "ray"}


def choose_runner() -> tuple[str, str | None]:
    """Who runs the tasks: this process (LocalRunner), a local Ray started for the run (one
    one-thread worker per core), or an existing Ray cluster. Returns (runner, address)."""
    cols = st.columns([2, 2])
    label = choice(cols[0].radio, "Runner", "study_runner", list(RUNNER_CHOICES),
                   "This process", horizontal=True,
                   help="Ray on this machine: one worker per core, one thread each (the "
                        "attacks' serial steps leave one multi-threaded process idle). Results "
                        "are the same under every runner, and a run resumes under any of them.")
    if label != "Ray cluster (address)":
        return RUNNER_CHOICES[label], None
    address = widget(cols[1].text_input, "Ray address", "study_address", "auto",
                     help="auto (a cluster started on this machine with `ray start --head`) or "
                          "HOST:PORT of the head node.").strip()
    host, sep, port = address.rpartition(":")
    if address != "auto" and not (sep and host and port.isdigit()):
        raise ConfigError(f"Ray address {address!r}: use auto or HOST:PORT.")
    return "ray", address


def choose_images(plan: StudyPlan, class_names: tuple[str, ...]) -> ImageSet:
    source = choice(st.radio, "Images", "study_src",
                    ["Sample photos", "Folder on the server", "CIFAR-10 batch on the server",
                     "Zip upload"], "Sample photos", horizontal=True)
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
    if source == "CIFAR-10 batch on the server":
        path = widget(cols[0].text_input, "CIFAR-10 batch file or cifar-10-batches-py folder",
                      "study_cifar", "",
                      help="The python version of CIFAR-10: a folder gives its test_batch; "
                           "name data_batch_1 ... 5 for training images.")
        if not path:
            raise ConfigError("Give the path of a CIFAR-10 batch (test_batch) or of the "
                              "cifar-10-batches-py folder on this server.")
        return ImageSetSpec("cifar10", path, None, subset or None, subset_seed).resolve(
            class_names)
    upload = cols[0].file_uploader("Zip of images + labels.csv", type=["zip"], key="study_zip")
    if upload is None:
        raise ConfigError("Upload a zip of images with a labels.csv (filename,class_index).")
    images = from_zip(upload.getvalue(), default_results_dir() / "uploads", name=upload.name,
                      class_names=class_names)
    return images.subset(subset or None, subset_seed)


def open_folders() -> None:
    """"Open a results folder": one or more folders, drawn together once opened (they stay
    open across reruns until the text changes)."""
    text = widget(st.text_area, "Results folder(s), one per line (e.g. written by "
                  "`python -m rsviz study`; several are drawn together, e.g. one per model)",
                  "study_open", str(default_results_dir()), height=90)
    folders = [line.strip() for line in text.splitlines() if line.strip()]
    if st.button("Open", key="study_open_btn") or persist("study_opened", None) == text:
        keep("study_opened", text)
        show(open_many(folders))


def load_plan(model: Any) -> tuple[StudyPlan, ImageSet | None]:
    """"Load a plan file" (YAML or JSON): the plan, and its image set resolved against the
    sidebar model's classes when the plan names that model (else None: the plan runs on its
    own models, loaded with their images). Stops the page until a plan is uploaded."""
    upload = st.file_uploader("Plan (YAML or JSON)", type=["yaml", "yml", "json"],
                              key="study_plan_file")
    if upload is None:
        st.info("Upload a plan, e.g. examples/plan_small.yaml.")
        st.stop()
    plan = parse_plan(upload.getvalue().decode("utf-8"),
                      ".json" if upload.name.endswith(".json") else ".yaml")
    if not names_model(plan, model):
        st.info(f"The plan names {', '.join(plan.models)}; it runs on "
                f"{'that model' if len(plan.models) == 1 else 'those models'}, "
                "not the sidebar's.")
        return plan, None
    return plan, plan.images.resolve(model.info.class_names)


def study_panel(request: Any, model: Any, run_model: Any) -> None:
    """The study's job panel: its cost and ETA before Start (`rsviz.views.base.estimate` on
    the sidebar model's measured rate), the partial results while it runs, the figures and
    tables once done. `run_model` is the loaded model the plan runs on (None: the plan loads
    its own)."""
    from rsviz.views.base import estimate

    plan, out, n_images = request.plan, request.out, request.n_images()
    guess = estimate(request, model)
    cost, eta, models = guess.cost, guess.seconds, len(plan.models)

    def partial(results: Any) -> None:
        show(StudyResults(plan, [{}] * n_images, list(results), out), final=False)

    job_panel("study", f"study {plan.name}", lambda job: request.run(run_model, None, job),
              request.key(), lambda result, fresh: show(result),
              start_label="Run the study", render_partial=partial,
              cost_note=(f"{len(plan.configurations())} configuration(s) × "
                         f"{len(plan.attacks)} attack(s) × {n_images} image(s)"
                         + (f" × {models} models" if models > 1 else "")
                         + f": {cost.describe()}, ≈ {format_eta(eta)} at most at "
                         f"{guess.rate:,.0f} passes/s (the rate measured on this model, one "
                         f"process). Results go to `{out}`; a stopped run resumes there, "
                         "under any runner."),
              confirm=(f"{cost.describe()}, ≈ {format_eta(eta)} at most"
                       if eta > CONFIRM_ABOVE_S else ""))


def show(study: StudyResults, final: bool = True) -> None:
    """Fig. 5, Fig. 4, the ratio distribution and the tables of a (partial) study."""
    done = len(study.results)
    st.caption(f"{done} of {study.expected or done} tasks done · results in `{study.folder}`")
    if study.failed:
        st.warning(f"{len(study.failed)} failed (the rest of the set ran; running the study "
                   "again retries them): " + "; ".join(
                       f"{f['task']}: {f['error']}" for f in study.failed[:3])
                   + ("; …" if len(study.failed) > 3 else ""))
        with st.expander("Failed images and tasks"):
            st.dataframe([{k: f.get(k, "") for k in ("task", "model", "error")}
                          for f in study.failed], hide_index=True)
    summary, runs, ratios = study.summary(), study.certification(), study.ratios()
    export = export_panel if final else (lambda *a, **k: None)
    tabs = st.tabs(["Distortion vs accuracy (Fig. 5)", "Certification (Fig. 4)",
                    "Distortion / certified radius", "Claims", "Tables"])
    with tabs[0]:
        metric = st.radio("Distortion", list(METRICS), format_func=METRICS.get, horizontal=True,
                          key=f"study_metric_{final}") if final else "mean_l2"
        if summary:
            fig = distortion_figure(summary, metric)
            st.plotly_chart(fig, key=f"study_fig5_{final}")
            export(fig, "study_distortion_vs_accuracy", summary, study.plan.to_dict(),
                   key="study_fig5")
        else:
            st.info("No attack finished yet.")
    with tabs[1]:
        published = published_results(final)
        if runs or published:
            by_model = (dict(runs) if runs and all(isinstance(v, dict) for v in runs.values())
                        else {study.plan.model: runs} if runs else {})
            for a in published:
                by_model[a.label] = {a.sigma if a.sigma is not None else 0.0: list(a.rows)}
            fig = certification_figure(by_model, study.plan.model)
            st.plotly_chart(fig, key=f"study_fig4_{final}")
            export(fig, "study_certified_accuracy", study.accuracy_drop(), study.plan.to_dict(),
                   key="study_fig4")
            if published:
                st.dataframe(analysis_rows(published + own_analyses(by_model, published)),
                             hide_index=True)
            if runs:
                st.dataframe(study.accuracy_drop(), hide_index=True)
        else:
            st.info("No certification yet (or the plan has none).")
    with tabs[2]:
        if ratios:
            fig = ratio_figure(ratios)
            st.plotly_chart(fig, key=f"study_ratio_{final}")
            export(fig, "study_ratio_to_radius", ratios, study.plan.to_dict(), key="study_ratio")
        else:
            st.info("Ratios need a successful attack on an image certified at that σ.")
    with tabs[3]:
        show_claims(study, final)
    with tabs[4]:
        st.dataframe(summary, hide_index=True)
        if final:
            from rsviz.figures.export import data_to_csv
            st.download_button("Summary (CSV)", data_to_csv(summary) or "",
                               file_name="study_summary.csv", key="study_dl_summary")
            st.download_button("Every task (CSV)", data_to_csv(study.results) or "",
                               file_name="study_tasks.csv", key="study_dl_tasks")


def published_results(final: bool) -> list[TsvAnalysis]:
    """Certification results in Cohen et al.'s TSV format to draw beside the study's (their
    released files, e.g. data/certify/cifar10/resnet110/noise_0.25/test/sigma_0.25, or any
    tool's): paths on the server and uploads, with the radii of the table."""
    if not final:
        return []
    with st.expander("Compare with published results (Cohen et al.'s TSV format)"):
        cols = st.columns([3, 2])
        text = widget(cols[0].text_area, "TSV files on the server, one per line",
                      "study_tsv_paths", "", height=70,
                      help="Columns idx label predict radius correct time, as locuslab/"
                           "smoothing's certify.py writes them (and `rsviz certify`).")
        radii = numbers(widget(cols[1].text_input, "Radii of the table", "study_tsv_radii",
                               ", ".join(f"{r:g}" for r in DEFAULT_RADII)), float, "Radii")
        uploads = st.file_uploader("…or upload them", accept_multiple_files=True,
                                   key="study_tsv_upload") or []
        st.caption("Certified accuracy at r: the share of images certified correct with radius "
                   "≥ r, as their analyze.py computes it; ACR: the average certified radius "
                   "(0 for images not certified correct).")
    found = [analyze_tsv(line.strip(), radii or DEFAULT_RADII)
             for line in text.splitlines() if line.strip()]
    for upload in uploads:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(upload.name).name
            path.write_bytes(upload.getvalue())
            rows = read_tsv(path)
        found.append(analyze_rows(rows, radii or DEFAULT_RADII, upload.name, upload.name,
                                  sigma_of(upload.name)))
    return found


def own_analyses(by_model: dict, published: list[TsvAnalysis]) -> list[TsvAnalysis]:
    """The study's own runs analysed at the published table's radii."""
    radii = published[0].radii
    labels = {a.label for a in published}
    return [analyze_rows(rows, radii, label=f"{model}, σ = {sigma:g}", sigma=sigma)
            for model, model_runs in by_model.items() if model not in labels
            for sigma, rows in sorted(model_runs.items()) if rows]


def analysis_rows(analyses: list[TsvAnalysis]) -> list[dict]:
    return [{"results": a.label, "images": a.images,
             **{f"r = {r:g}": round(v, 4) for r, v in zip(a.radii, a.certified_accuracy)},
             "ACR": round(a.average_radius, 4)} for a in analyses]


def show_claims(study: StudyResults, final: bool) -> None:
    """The paper's claims checked on these results (`python -m rsviz.study.claims`)."""
    from rsviz.study.claims import MIN_PAIRED, SIMILAR, claims

    rows = claims(study.results)
    if not rows:
        st.info("The claims compare attacks on f and on g (include the undefended f in the plan)"
                " and need finished attacks on the same images.")
        return
    st.caption("Ratio of mean L2 distortions over the images where both compared attacks "
               "succeeded, with a 95 % paired bootstrap interval. *Reproduced*: the interval "
               "lies on the paper's side of 1; *refuted*: on the other side; fewer than "
               f"{MIN_PAIRED} paired images or an interval across 1: *not resolved at this "
               f"size*. \"P_a hardly matters\": the interval within [{SIMILAR[0]}, {SIMILAR[1]}].")
    st.dataframe(rows, hide_index=True)
    if final:
        from rsviz.figures.export import data_to_csv
        st.download_button("Claims (CSV)", data_to_csv(rows) or "", file_name="study_claims.csv",
                           key="study_dl_claims")
