"""DAGs that call the bridge back, as a DAG starting a Planasonix pipeline would cause a
completion webhook: each run posts a signed run.succeeded for `conf["next_pipeline"]` to
`conf["callback_url"]`, forwarding the bridge's lineage when `conf["forward"]` is true (as a
JSON string in trigger.correlation, the way operators usually forward it).

The webhook secret comes from the environment (PLANASONIX_TEST_WEBHOOK_SECRET), never from conf.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import time
import urllib.request

from airflow import DAG

try:  # Airflow 3 (standard provider)
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow.operators.python import PythonOperator


def _call_back(**context):
    dag_run = context["dag_run"]
    conf = dict(dag_run.conf or {})
    correlation = {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "task_id": "call_back"}
    if conf.get("forward"):
        correlation["planasonix_bridge"] = json.dumps(conf.get("planasonix_bridge"))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "id": f"evt_{dag_run.run_id}",
        "type": "run.succeeded",
        "created_at": now,
        "data": {
            "run_id": f"after_{dag_run.dag_id}_{conf.get('planasonix_bridge', {}).get('depth', 0)}_{int(time.time() * 1000)}",
            "pipeline_id": conf["next_pipeline"],
            "pipeline_name": conf["next_pipeline"],
            "status": "succeeded",
            "trigger": {"type": "integration", "correlation": correlation},
        },
    }
    body = json.dumps(event)
    msg_id = f"msg_{dag_run.dag_id}_{dag_run.run_id}"
    timestamp = str(int(time.time()))
    secret = os.environ["PLANASONIX_TEST_WEBHOOK_SECRET"].removeprefix("whsec_")
    digest = hmac.new(base64.b64decode(secret), f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    request = urllib.request.Request(
        conf["callback_url"],
        data=body.encode(),
        method="POST",
        headers={
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        print(f"call_back: {answer.status} {answer.read().decode()}")
        return answer.status


for dag_id in ("loop_dag", "hop_1", "hop_2", "hop_3", "hop_4", "nofwd_dag"):
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime.datetime(2024, 1, 1),
        catchup=False,
        is_paused_upon_creation=False,
        tags=["planasonix-bridge-test"],
    ) as dag:
        PythonOperator(task_id="call_back", python_callable=_call_back)
    globals()[dag_id] = dag
