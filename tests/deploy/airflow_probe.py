"""Run by tests/deploy/test_airflow.py (a copy of tests/airflow_probe.py whose task-instance
stand-in also answers ``find_previous``, the cumulative DAGs' last-release task) with the Airflow venv's python (.venv-airflow):
load deploy/airflow through a real DagBag and print, as JSON, the import errors, each
DAG's settings and task graph, and every operator's templated fields rendered by the
DAG's own Jinja environment.

    python tests/deploy/airflow_probe.py DAG_FOLDER CRAWL_ID RUN_ID TRY_NUMBER OUT_JSON [PREVIOUS_JSON]

PREVIOUS_JSON: {dag_id: find_previous's answer} (default: "" for every DAG).

The DAG folder is loaded as Airflow 3's dag processor loads a bundle (``BundleDagBag``: the
folder is on sys.path, so the DAGs import their sibling modules).

Rendering needs a task instance for ``ti.xcom_pull`` and ``ti.try_number``: a minimal
stand-in (below) provides them, since a real one needs a scheduler and a database run.
"""

import json
import sys


class TaskInstanceStandIn:
    def __init__(self, crawl, try_number, previous):
        self.crawl, self.try_number, self.previous = crawl, try_number, previous

    def xcom_pull(self, task_ids=None, **kwargs):
        assert task_ids in ("find_crawl", "find_previous"), task_ids
        return self.crawl if task_ids == "find_crawl" else self.previous


def main(folder, crawl, run_id, try_number, out_path, previous="{}"):
    from pathlib import Path

    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=folder, bundle_path=Path(folder))
    out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
    for dag_id, dag in sorted(bag.dags.items()):
        info = {"schedule": str(getattr(dag, "schedule", None)), "timetable": type(dag.timetable).__name__, "max_active_runs": dag.max_active_runs,
                "catchup": dag.catchup, "params": {k: dag.params.get_param(k).schema for k in dag.params},
                "fileloc": dag.fileloc, "tasks": {}}
        env = dag.get_template_env()
        context = {"ti": TaskInstanceStandIn(crawl, int(try_number), json.loads(previous).get(dag_id, "")), "run_id": run_id, "params": {}}
        for t in dag.tasks:
            entry = {"type": type(t).__name__, "upstream": sorted(t.upstream_task_ids),
                     "downstream": sorted(t.downstream_task_ids), "trigger_rule": str(t.trigger_rule),
                     "retries": t.retries, "rendered": {}}
            if type(t).__name__ not in ("_PythonDecoratedOperator", "_BranchPythonDecoratedOperator"):
                for field in t.template_fields:
                    entry["rendered"][field] = t.render_template(getattr(t, field), context, env)
            info["tasks"][t.task_id] = entry
        out["dags"][dag_id] = info
    with open(out_path, "w") as fh:
        json.dump(out, fh, indent=1, default=str)


if __name__ == "__main__":
    main(*sys.argv[1:7])
