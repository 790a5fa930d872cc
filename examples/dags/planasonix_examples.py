"""The DAGs that config/example.yaml's routes trigger (used by `npm run demo`).

Each one logs the conf the bridge sent and returns it, so it is also readable as the
`return_value` XCom of task `show_conf`. Parses on Airflow 2.10+/3.x.
"""
from __future__ import annotations

import datetime
import json

from airflow import DAG

try:  # Airflow 3 (standard provider)
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow.operators.python import PythonOperator


def _show_conf(**context):
    dag_run = context["dag_run"]
    conf = dict(dag_run.conf or {})
    print(f"{dag_run.dag_id}: run_id={dag_run.run_id} conf={json.dumps(conf, sort_keys=True)}")
    return conf


for dag_id in ("dbt_sales_models", "inventory_refresh", "planasonix_failure_alert"):
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime.datetime(2024, 1, 1),
        catchup=False,
        is_paused_upon_creation=False,
        tags=["planasonix-bridge-example"],
    ) as dag:
        PythonOperator(task_id="show_conf", python_callable=_show_conf)
    globals()[dag_id] = dag
