"""The listener and its worker against a real loopback HTTP receiver (Airflow imported)."""
import _support  # noqa: F401  (must come first)

import base64
import hashlib
import hmac
import json
import logging
import os
import time
import unittest
from unittest import mock

from _support import LINEAGE, SECRET, Receiver, dag_run, free_port

from planasonix_bridge import listener, lineage, lineage_json
from planasonix_bridge.push import Config, Pusher, decode_secret, webhook_id

HOOK_BUDGET_S = 0.050
HOOKS = {"running": listener.on_dag_run_running, "success": listener.on_dag_run_success, "failed": listener.on_dag_run_failed}


def verify(req, secret=SECRET, tolerance=300):
    """Standard Webhooks verification, written out independently of the plugin's code."""
    h = req["headers"]
    key = base64.b64decode(secret[len("whsec_"):])
    ts = int(h["webhook-timestamp"])
    assert abs(time.time() - ts) <= tolerance, "timestamp outside tolerance"
    expected = base64.b64encode(hmac.new(key, f"{h['webhook-id']}.{ts}.".encode() + req["body"], hashlib.sha256).digest()).decode()
    return any(sig.split(",", 1) == ["v1", expected] for sig in h["webhook-signature"].split(" "))


def install(url, **kw):
    pusher = Pusher(Config(url=url, key=decode_secret(SECRET), **kw))
    listener.reset(pusher, configured=True)
    return pusher


def timed(fn, *args, **kw):
    t = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t


class Delivery(unittest.TestCase):
    def setUp(self):
        self.rx = Receiver("ok")

    def tearDown(self):
        self.rx.close()
        listener.reset()

    def test_each_hook_posts_one_signed_push_the_receiver_verifies(self):
        pusher = install(self.rx.url, timeout=2)
        for state, hook in HOOKS.items():
            run = dag_run(run_id=f"run_{state}", state=state)
            self.assertLess(timed(hook, dag_run=run, msg="x"), HOOK_BUDGET_S)
        reqs = self.rx.wait_for(3)
        self.assertTrue(pusher.flush(5))
        self.assertEqual(len(reqs), 3)
        states = []
        for req in reqs:
            self.assertEqual(req["path"], "/webhooks/airflow/default")
            self.assertTrue(verify(req), req["headers"])
            self.assertEqual(req["headers"]["content-type"], "application/json")
            self.assertTrue(req["headers"]["user-agent"].startswith("planasonix-bridge-airflow-plugin/"))
            body = json.loads(req["body"].decode("utf-8"))
            self.assertEqual(body["type"], "dag_run.state_changed")
            self.assertEqual(body["id"], req["headers"]["webhook-id"])
            d = body["data"]
            self.assertEqual(body["id"], webhook_id("dag_a", d["dag_run_id"], d["state"]))
            self.assertEqual(d["planasonix_bridge"], LINEAGE)
            self.assertEqual(d["start_date"], "2026-11-24T02:14:09.123456Z")
            self.assertIsNone(d["end_date"])
            self.assertEqual(d["dag_run_id"], f"run_{d['state']}")
            states.append(d["state"])
        self.assertEqual(sorted(states), ["failed", "running", "success"])
        self.assertEqual(pusher.sent, 3)

    def test_a_run_without_planasonix_bridge_in_conf_sends_nothing(self):
        pusher = install(self.rx.url)
        for conf in (None, {}, {"other": 1}, "not-a-dict", {"planasonix": {}}):
            listener.on_dag_run_success(dag_run=dag_run(conf=conf), msg="success")
        listener.on_dag_run_success(dag_run=dag_run(run_id="yes"), msg="success")
        reqs = self.rx.wait_for(1)
        pusher.flush(5)
        time.sleep(0.2)
        self.assertEqual([json.loads(r["body"])["data"]["dag_run_id"] for r in self.rx.requests], ["yes"])

    def test_the_same_state_change_twice_has_the_same_webhook_id(self):
        pusher = install(self.rx.url)
        listener.on_dag_run_failed(dag_run=dag_run(), msg="x")
        listener.on_dag_run_failed(dag_run=dag_run(), msg="x")
        reqs = self.rx.wait_for(2)
        pusher.flush(5)
        self.assertEqual(reqs[0]["headers"]["webhook-id"], reqs[1]["headers"]["webhook-id"])

    def test_through_airflows_own_listener_manager(self):
        """The hooks register against Airflow's hook specs (pluggy checks the argument names)
        and Airflow's dispatch reaches them."""
        from airflow.listeners.listener import get_listener_manager

        pusher = install(self.rx.url)
        lm = get_listener_manager()
        lm.add_listener(listener)
        try:
            lm.hook.on_dag_run_running(dag_run=dag_run(run_id="via_lm"), msg="started")
            reqs = self.rx.wait_for(1)
            self.assertEqual(json.loads(reqs[0]["body"])["data"]["dag_run_id"], "via_lm")
        finally:
            lm.clear()
        pusher.flush(5)


class NeverBlocks(unittest.TestCase):
    def tearDown(self):
        listener.reset()

    def _assert_gives_up(self, url, tries, expect_requests=None, rx=None):
        pusher = install(url, timeout=0.3, tries=tries)
        with self.assertLogs("planasonix_bridge", level="WARNING") as logs:
            for state, hook in HOOKS.items():
                self.assertLess(timed(hook, dag_run=dag_run(), msg="x"), HOOK_BUDGET_S, state)
            self.assertTrue(pusher.flush(30))
        self.assertEqual(pusher.dropped_failed, 3)
        self.assertEqual(pusher.sent, 0)
        self.assertEqual(sum(f"dropped after {tries} tries" in line for line in logs.output), 3, logs.output)
        if rx is not None:
            reqs = rx.wait_for(expect_requests, timeout=5)
            self.assertEqual(len(reqs), expect_requests)
            by_id = {}
            for r in reqs:
                by_id.setdefault(r["headers"]["webhook-id"], []).append(r)
                self.assertTrue(verify(r))
            self.assertEqual(sorted(len(v) for v in by_id.values()), [tries] * 3)  # same id on every retry
        return pusher

    def test_bridge_down_connection_refused(self):
        self._assert_gives_up(f"http://127.0.0.1:{free_port()}/webhooks/airflow/default", tries=2)

    def test_bridge_answering_500_is_tried_tries_times_with_backoff(self):
        rx = Receiver("fail")
        try:
            t = time.monotonic()
            self._assert_gives_up(rx.url, tries=3, expect_requests=9, rx=rx)
            # 0.2 s + 0.4 s of backoff per message, one message after the other
            self.assertGreaterEqual(time.monotonic() - t, 3 * 0.6 - 0.05)
            ats = sorted(r["at"] for r in rx.requests if json.loads(r["body"])["data"]["state"] == "running")
            self.assertGreaterEqual(ats[1] - ats[0], 0.18)
            self.assertGreaterEqual(ats[2] - ats[1], 0.38)
        finally:
            rx.close()

    def test_bridge_slower_than_the_timeout(self):
        rx = Receiver("slow", delay=2.0)
        try:
            t = time.monotonic()
            self._assert_gives_up(rx.url, tries=2, expect_requests=6, rx=rx)
            # each try is cut at the 0.3 s timeout, not after the receiver's 2 s
            self.assertLess(time.monotonic() - t, 3 * (2 * 0.3 + 0.2) + 1.5)
        finally:
            rx.close()

    def test_queue_full_drops_without_blocking(self):
        rx = Receiver("slow", delay=1.0)
        try:
            pusher = install(rx.url, timeout=2, tries=1, queue_size=2)
            with self.assertLogs("planasonix_bridge", level="WARNING") as logs:
                worst = 0.0
                for i in range(20):
                    worst = max(worst, timed(listener.on_dag_run_success, dag_run=dag_run(run_id=f"r{i}"), msg="x"))
            self.assertLess(worst, HOOK_BUDGET_S)
            # the worker holds at most one, the queue two: everything else is dropped
            self.assertGreaterEqual(pusher.dropped_full, 17)
            self.assertTrue(any("queue full" in line for line in logs.output))
            self.assertTrue(pusher.flush(10))
            self.assertEqual(pusher.sent + pusher.dropped_full, 20)
        finally:
            rx.close()

    def test_an_exception_inside_the_hook_is_caught_and_logged(self):
        install("http://127.0.0.1:9/x")

        class Broken:
            conf = {"planasonix_bridge": {}}

            @property
            def dag_id(self):
                raise RuntimeError("boom")

        with self.assertLogs("planasonix_bridge", level="WARNING") as logs:
            listener.on_dag_run_success(dag_run=Broken(), msg="x")  # must not raise
        self.assertIn("could not queue", logs.output[0])


class Configuration(unittest.TestCase):
    def tearDown(self):
        listener.reset()
        for k in list(os.environ):
            if k.startswith("AIRFLOW__PLANASONIX_BRIDGE__"):
                del os.environ[k]

    def test_inert_without_config_logs_once_at_info_and_sends_nothing(self):
        listener.reset()
        with self.assertLogs("planasonix_bridge", level="INFO") as logs:
            for _ in range(3):
                listener.on_dag_run_success(dag_run=dag_run(), msg="x")
        self.assertEqual(len(logs.output), 1)
        self.assertIn("INFO", logs.output[0])
        self.assertIn("inert", logs.output[0])
        self.assertIsNone(listener.get_pusher())

    def test_reads_airflow_config_from_env(self):
        rx = Receiver("ok")
        try:
            os.environ["AIRFLOW__PLANASONIX_BRIDGE__URL"] = rx.url
            os.environ["AIRFLOW__PLANASONIX_BRIDGE__SECRET"] = SECRET
            os.environ["AIRFLOW__PLANASONIX_BRIDGE__TIMEOUT"] = "0.7"
            os.environ["AIRFLOW__PLANASONIX_BRIDGE__TRIES"] = "4"
            os.environ["AIRFLOW__PLANASONIX_BRIDGE__QUEUE_SIZE"] = "9"
            listener.reset()
            listener.on_dag_run_running(dag_run=dag_run(), msg="x")
            pusher = listener.get_pusher()
            self.assertIsNotNone(pusher)
            self.assertEqual((pusher.config.url, pusher.config.timeout, pusher.config.tries, pusher.config.queue_size), (rx.url, 0.7, 4, 9))
            reqs = rx.wait_for(1)
            self.assertTrue(verify(reqs[0]))
            pusher.flush(5)
        finally:
            rx.close()

    def test_reads_the_planasonix_bridge_section_of_airflow_cfg(self):
        from airflow.configuration import conf

        with mock.patch.object(conf, "get", side_effect=lambda section, key, fallback=None, **kw: {"url": "http://127.0.0.1:1/x", "secret": SECRET}.get(key, fallback) if section == "planasonix_bridge" else fallback):
            listener.reset()
            pusher = listener.get_pusher()
        self.assertEqual(pusher.config.url, "http://127.0.0.1:1/x")


class Lineage(unittest.TestCase):
    def test_from_a_dag_run_a_context_or_a_conf(self):
        run = dag_run()
        self.assertEqual(lineage(run), LINEAGE)
        self.assertEqual(lineage({"dag_run": run, "ti": None}), LINEAGE)
        self.assertEqual(lineage(run.conf), LINEAGE)
        self.assertEqual(json.loads(lineage_json(run)), LINEAGE)

    def test_none_when_absent_never_raises(self):
        for arg in (None, {}, {"dag_run": None}, dag_run(conf=None), dag_run(conf={"x": 1}), object(), 42):
            self.assertIsNone(lineage(arg))
        self.assertEqual(lineage_json(None), "null")


if __name__ == "__main__":
    unittest.main()
