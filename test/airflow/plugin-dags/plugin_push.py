"""DAGs for the push-plugin end-to-end test (test/airflow/plugin.test.ts); they need the
plugin loaded (startAirflow({ plugin })).

`push_ok`: task `forward` returns the run's lineage twice, once through the plugin's Jinja
macro (rendered in a templated field) and once through `planasonix_bridge.lineage(context)`,
i.e. the two ways a DAG author forwards `conf.planasonix_bridge` to Planasonix.
`push_fail`: task `fail` raises, so the run ends `failed`.

Parses on Airflow 2.11 and 3.x.
"""
from __future__ import annotations

import datetime
import json

from airflow import DAG

try:  # Airflow 3 (standard provider)
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow.operators.python import PythonOperator


def _forward(from_macro: str, **context):
    from planasonix_bridge import lineage

    return {"macro": json.loads(from_macro), "function": lineage(context)}


def _fail(**_context):
    raise RuntimeError("push_fail fails on purpose")


common = dict(
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["planasonix-bridge-test"],
    default_args={"retries": 0},
)

with DAG(dag_id="push_ok", **common):
    PythonOperator(
        task_id="forward",
        python_callable=_forward,
        op_kwargs={"from_macro": "{{ macros.planasonix_bridge.lineage_json(dag_run) }}"},
    )

with DAG(dag_id="push_fail", **common):
    PythonOperator(task_id="fail", python_callable=_fail)


def _sleep(**_context):
    import time

    time.sleep(8)


# `push_sleep`: succeeds after 8 s, so a route's finished_within of a few seconds is missed.
with DAG(dag_id="push_sleep", **common):
    PythonOperator(task_id="sleep", python_callable=_sleep)
