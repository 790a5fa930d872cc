"""The AirflowPlugin that registers the listener and the lineage macros."""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from . import listener
from .lineage import lineage, lineage_json


class PlanasonixBridgePlugin(AirflowPlugin):
    name = "planasonix_bridge"
    listeners = [listener]
    # {{ macros.planasonix_bridge.lineage(dag_run) }} / ...lineage_json(dag_run): Airflow 2
    # (airflow.macros) and Airflow 3 (task SDK, airflow.sdk.execution_time.macros) both
    # integrate plugin macros.
    macros = [lineage, lineage_json]
