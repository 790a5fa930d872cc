"""DAG `asset_producer`: declares an outlet asset (Airflow 3) / dataset
(Airflow 2) so that the asset row exists in the metadata DB once the file is
parsed; tests can then look it up (GET /api/v2/assets?uri_pattern=... or
GET /api/v1/datasets?uri_pattern=...) and post events for it.

DAG `asset_consumer` is scheduled on that asset: an asset event posted by the
bridge makes the scheduler start a run of it.
"""
from __future__ import annotations

import datetime

from airflow import DAG

try:  # Airflow 3
    from airflow.sdk import Asset
except ImportError:  # Airflow 2
    from airflow.datasets import Dataset as Asset

try:
    from airflow.providers.standard.operators.empty import EmptyOperator
except ImportError:
    from airflow.operators.empty import EmptyOperator

TEST_ASSET_URI = "planasonix://bridge/test-asset"

with DAG(
    dag_id="asset_producer",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=True,
    tags=["planasonix-bridge-test"],
) as dag:
    EmptyOperator(task_id="produce", outlets=[Asset(TEST_ASSET_URI)])

with DAG(
    dag_id="asset_consumer",
    schedule=[Asset(TEST_ASSET_URI)],
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["planasonix-bridge-test"],
) as consumer:
    EmptyOperator(task_id="consume")
