"""Shared test helpers. Imported first by every test module: it points AIRFLOW_HOME at a
temporary directory before anything imports Airflow, so the suite never writes ~/airflow."""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_home = tempfile.mkdtemp(prefix="planasonix-plugin-test-home-")
atexit.register(shutil.rmtree, _home, True)
os.environ["AIRFLOW_HOME"] = _home
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
for _k in list(os.environ):
    if _k.startswith("AIRFLOW__PLANASONIX_BRIDGE__"):
        del os.environ[_k]

PLUGIN_DIR = Path(__file__).resolve().parent.parent  # airflow-plugin/
REPO = PLUGIN_DIR.parent
VECTORS = REPO / "test" / "vectors" / "standard-webhooks.json"

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class FakeDagRun:
    """The attributes of a DagRun the listener reads."""

    def __init__(self, dag_id="dag_a", run_id="run_1", conf=None, state="running", start_date=None, end_date=None):
        self.dag_id = dag_id
        self.run_id = run_id
        self.conf = conf
        self.state = state
        self.start_date = start_date
        self.end_date = end_date


LINEAGE = {"chain_id": "ch_1", "depth": 1, "path": ["planasonix:pl_1", "airflow:dag_a"], "event_id": "evt_1", "route": "r1"}


def dag_run(**kw):
    kw.setdefault("conf", {"x": 1, "planasonix_bridge": LINEAGE})
    kw.setdefault("start_date", datetime(2026, 11, 24, 2, 14, 9, 123456, tzinfo=timezone.utc))
    return FakeDagRun(**kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A loopback HTTP receiver; ``mode`` is ok (202), fail (500) or slow (sleeps, then 202)."""

    def __init__(self, mode="ok", delay=1.5):
        self.mode = mode
        self.delay = delay
        self.requests = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver.cond:
                    receiver.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "at": time.time()})
                    receiver.cond.notify_all()
                if receiver.mode == "slow":
                    time.sleep(receiver.delay)
                status = 500 if receiver.mode == "fail" else 202
                out = b'{"ok":true}'
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass  # the client gave up (timeout)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/airflow/default"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
