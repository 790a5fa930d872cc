"""planasonix-bridge Airflow plugin: push DAG-run state changes to planasonix-airflow-bridge.

``from planasonix_bridge import lineage`` is the helper a DAG author uses to forward
``conf.planasonix_bridge`` to Planasonix. Importing this package does not import Airflow.
"""
from ._version import __version__
from .lineage import lineage, lineage_json

__all__ = ["__version__", "lineage", "lineage_json"]
