"""DAG `record_conf`: one task that returns dag_run.conf, so it becomes the
`return_value` XCom of task `record` (readable through the REST API).

Parses on Airflow 2.10/2.11 and 3.x.
"""
from __future__ import annotations

import datetime

from airflow import DAG

try:  # Airflow 3 (standard provider)
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow.operators.python import PythonOperator


def _record(**context):
    dag_run = context["dag_run"]
    conf = dict(dag_run.conf or {})
    print(f"record_conf: run_id={dag_run.run_id} conf={conf!r}")
    return conf


with DAG(
    dag_id="record_conf",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["planasonix-bridge-test"],
) as dag:
    PythonOperator(task_id="record", python_callable=_record)
