"""DAG `paused_dag`: paused upon creation, for paused-DAG trigger tests."""
from __future__ import annotations

import datetime

from airflow import DAG

try:
    from airflow.providers.standard.operators.empty import EmptyOperator
except ImportError:
    from airflow.operators.empty import EmptyOperator


with DAG(
    dag_id="paused_dag",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=True,
    tags=["planasonix-bridge-test"],
) as dag:
    EmptyOperator(task_id="noop")
