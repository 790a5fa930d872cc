"""Lineage forwarding: the value a DAG hands on to Planasonix, unchanged (DESIGN §4)."""
from __future__ import annotations

import json
from typing import Any, Mapping

KEY = "planasonix_bridge"


def _conf_of(context_or_dag_run: Any) -> Any:
    obj = context_or_dag_run
    if isinstance(obj, Mapping):
        if "dag_run" in obj:  # a task context (dict / airflow Context)
            obj = obj["dag_run"]
        elif KEY in obj:  # already a conf dict
            return obj
        else:
            return None
    if obj is None:
        return None
    conf = getattr(obj, "conf", None)  # DagRun (ORM, Airflow 2) or the task-SDK DagRun model (Airflow 3)
    return conf


def lineage(context_or_dag_run: Any) -> Any:
    """``conf["planasonix_bridge"]`` of the run, as is (usually a dict), or None.

    Accepts a task context (``**context`` / ``get_current_context()``), a DagRun, or a conf
    dict. Never raises.
    """
    try:
        conf = _conf_of(context_or_dag_run)
        if isinstance(conf, Mapping):
            return conf.get(KEY)
    except Exception:
        pass
    return None


def lineage_json(context_or_dag_run: Any) -> str:
    """The same value as a JSON string (``"null"`` when absent), for Jinja templates, where a
    plain ``{{ ... }}`` would otherwise render a dict as its Python repr. The bridge accepts the
    lineage either as an object or as its JSON string."""
    return json.dumps(lineage(context_or_dag_run), separators=(",", ":"), ensure_ascii=False, default=str)
