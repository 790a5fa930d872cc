"""The Airflow listener: a module with pluggy ``hookimpl`` functions (Airflow's listener API).

Hook specs (identical in Airflow 2.11 and 3.3, ``airflow/listeners/spec/dagrun.py``)::

    on_dag_run_running(dag_run: DagRun, msg: str)
    on_dag_run_success(dag_run: DagRun, msg: str)
    on_dag_run_failed(dag_run: DagRun, msg: str)

Each hook runs inside the scheduler's (or the API server's) own work, so it only reads a few
attributes, builds a dict and ``put_nowait``s it; any exception is caught and logged here.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Mapping, Optional

from airflow.listeners import hookimpl

from .lineage import KEY
from .push import Pusher, build_message, parse_config

log = logging.getLogger("planasonix_bridge")

_state_lock = threading.Lock()
_pusher: Optional[Pusher] = None
_configured = False


def _airflow_get(key: str) -> Optional[str]:
    from airflow.configuration import conf

    try:
        return conf.get("planasonix_bridge", key, fallback=None)
    except Exception:
        return None


def get_pusher(get: Callable[[str], Optional[str]] = _airflow_get) -> Optional[Pusher]:
    """The process's pusher, configured on first use; None (logged once at info) when inert."""
    global _pusher, _configured
    if _configured:
        return _pusher
    if not _state_lock.acquire(timeout=0.01):
        return None  # another thread is configuring; never wait in a hook
    try:
        if not _configured:
            config, reason = parse_config(get)
            if config is None:
                log.info("planasonix_bridge: push plugin inert: %s", reason)
            else:
                _pusher = Pusher(config)
                log.info("planasonix_bridge: pushing DAG-run state changes to %s", config.url)
            _configured = True
        return _pusher
    finally:
        _state_lock.release()


def reset(pusher: Optional[Pusher] = None, configured: bool = False) -> None:
    """For tests: forget (or replace) the process's pusher."""
    global _pusher, _configured
    with _state_lock:
        _pusher = pusher
        _configured = configured


def notify(dag_run: Any, state: str) -> None:
    try:
        conf = getattr(dag_run, "conf", None)
        if not isinstance(conf, Mapping) or KEY not in conf:
            return
        pusher = get_pusher()
        if pusher is None:
            return
        pusher.submit(
            build_message(
                dag_id=str(dag_run.dag_id),
                dag_run_id=str(dag_run.run_id),
                state=state,
                start_date=getattr(dag_run, "start_date", None),
                end_date=getattr(dag_run, "end_date", None),
                lineage=conf[KEY],
            )
        )
    except Exception:
        log.warning("planasonix_bridge: could not queue the %s push", state, exc_info=True)


@hookimpl
def on_dag_run_running(dag_run, msg):
    notify(dag_run, "running")


@hookimpl
def on_dag_run_success(dag_run, msg):
    notify(dag_run, "success")


@hookimpl
def on_dag_run_failed(dag_run, msg):
    notify(dag_run, "failed")
