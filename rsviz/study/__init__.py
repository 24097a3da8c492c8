"""Studies over image sets (paper Fig. 4 and Fig. 5): plans, idempotent tasks, a result store,
runners (local, Ray) and aggregation.

A `StudyPlan` (YAML or JSON) names one or several models, an image set, the defended
configurations (σ × n × criterion × P_a, plus the undefended f), the attacks, a query budget
and a seed. It expands into tasks; every task — CERTIFY of one image at one σ, or one attack on
one image against one configuration — is a pure function of its inputs and its derived seed,
keyed by the model id (weights included). A task's result is stored as soon as it finishes (one
JSON file per task, written atomically, plus the disk cache), so a run that stops resumes
without redoing work, under either runner. Modules: `plan` (plans, checks), `tasks` (task
identity and execution), `store` (the results folder), `runners` (`LocalRunner`),
`ray_runner` (`RayRunner`), `aggregate` (Fig. 5 rows with bootstrap intervals, Fig. 4 runs,
ratios to the certified radius), `run` (running and opening studies).
"""

from rsviz.study.aggregate import (StudyResults, accuracy_drops, bootstrap_ci,
                                   certification_by_model, certification_runs, certified_radii,
                                   ratio_rows, summarize)
from rsviz.study.plan import (Configuration, StudyPlan, check_model_ref, check_plan, load_plan,
                              parse_plan)
from rsviz.study.run import (default_results_dir, load_model_ref, load_models, open_many,
                             open_results, prepare, run_study, write_tables)
from rsviz.study.runners import RUNNERS, LocalRunner, make_runner
from rsviz.study.runstate import RunReport, TaskRunner
from rsviz.study.store import ResultStore, write_csv, write_json_atomic  # noqa: F401 (storage's)
from rsviz.study.tasks import (AttackTask, CertifyTask, ImageRef, Task, build_tasks,
                               execute_task, image_refs)

__all__ = [
    "AttackTask", "CertifyTask", "Configuration", "ImageRef", "LocalRunner", "ResultStore",
    "RunReport", "StudyPlan", "StudyResults", "Task", "TaskRunner", "accuracy_drops",
    "bootstrap_ci", "build_tasks", "certification_by_model", "certification_runs",
    "certified_radii", "check_model_ref", "check_plan", "default_results_dir", "execute_task",
    "image_refs", "load_model_ref", "load_models", "load_plan", "open_many", "open_results",
    "parse_plan", "prepare", "ratio_rows", "run_study", "summarize", "write_csv",
    "write_json_atomic", "write_tables", "RUNNERS", "make_runner",
]
