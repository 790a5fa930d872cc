"""Signing, webhook-id and body shape (no network, no Airflow import)."""
import _support  # noqa: F401  (must come first)

import base64
import hashlib
import hmac
import json
import re
import unittest
from datetime import datetime, timedelta, timezone

from planasonix_bridge.push import (
    EVENT_TYPE,
    USER_AGENT,
    build_message,
    decode_secret,
    encode,
    parse_config,
    sign,
    signed_request,
    webhook_id,
)
from planasonix_bridge import __version__

VECTOR = json.loads(_support.VECTORS.read_text())["symmetric"]


class StandardWebhooksVectors(unittest.TestCase):
    def test_signs_the_spec_vector_with_the_whsec_secret(self):
        key = decode_secret(VECTOR["secret"])
        got = sign(key, VECTOR["id"], VECTOR["timestamp"], VECTOR["payload"].encode("utf-8"))
        self.assertEqual(got, VECTOR["signature"])

    def test_secret_prefix_is_optional(self):
        self.assertEqual(decode_secret(VECTOR["secret"]), decode_secret(VECTOR["secret_without_prefix"]))
        got = sign(decode_secret(VECTOR["secret_without_prefix"]), VECTOR["id"], VECTOR["timestamp"], VECTOR["payload"].encode())
        self.assertEqual(got, VECTOR["signature"])

    def test_a_changed_byte_changes_the_signature(self):
        key = decode_secret(VECTOR["secret"])
        other = sign(key, VECTOR["id"], VECTOR["timestamp"], VECTOR["payload"].replace("2", "3", 1).encode())
        self.assertNotEqual(other, VECTOR["signature"])

    def test_non_base64_secret_is_refused(self):
        with self.assertRaises(ValueError):
            decode_secret("whsec_not base64!!")

    def test_signed_request_headers(self):
        msg = build_message("d", "r", "success", None, None, {"depth": 1})
        body, headers = signed_request("http://x", decode_secret(VECTOR["secret"]), msg, timestamp=1_700_000_000)
        self.assertEqual(body, encode(msg))
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(headers["webhook-id"], msg["id"])
        self.assertEqual(headers["webhook-timestamp"], "1700000000")
        self.assertEqual(headers["user-agent"], f"planasonix-bridge-airflow-plugin/{__version__}")
        self.assertEqual(USER_AGENT, headers["user-agent"])
        # independent recomputation, exactly as a Standard Webhooks receiver does
        mac = hmac.new(base64.b64decode(VECTOR["secret_without_prefix"]), f"{msg['id']}.1700000000.".encode() + body, hashlib.sha256).digest()
        self.assertEqual(headers["webhook-signature"], "v1," + base64.b64encode(mac).decode())


class WebhookId(unittest.TestCase):
    def test_stable_and_documented_shape(self):
        a = webhook_id("dbt_sales", "planasonix__run_7Hc2__sales-to-dbt", "success")
        self.assertEqual(a, webhook_id("dbt_sales", "planasonix__run_7Hc2__sales-to-dbt", "success"))
        self.assertRegex(a, r"^af_[0-9a-f]{32}$")
        expected = "af_" + hashlib.sha256(b"dbt_sales\nplanasonix__run_7Hc2__sales-to-dbt\nsuccess").hexdigest()[:32]
        self.assertEqual(a, expected)
        # pinned literal: a change of the recipe would make the bridge see new deliveries
        self.assertEqual(webhook_id("d", "r", "running"), "af_" + hashlib.sha256(b"d\nr\nrunning").hexdigest()[:32])
        self.assertEqual(webhook_id("d", "r", "running"), "af_0eb359724da5e5b7372f1bfe09b879c0")

    def test_differs_per_state_run_and_dag(self):
        ids = {webhook_id(d, r, s) for d in ("d1", "d2") for r in ("r1", "r2") for s in ("running", "success", "failed")}
        self.assertEqual(len(ids), 12)

    def test_same_id_on_every_build_of_the_message(self):
        m1 = build_message("d", "r", "failed", None, None, None)
        m2 = build_message("d", "r", "failed", None, None, None, now=datetime.now(timezone.utc) + timedelta(hours=1))
        self.assertEqual(m1["id"], m2["id"])


class BodyShape(unittest.TestCase):
    def test_body(self):
        start = datetime(2026, 11, 24, 2, 14, 9, 500000, tzinfo=timezone.utc)
        end = datetime(2026, 11, 24, 4, 14, 9, tzinfo=timezone(timedelta(hours=2)))  # = 02:14:09Z
        lineage = {"chain_id": "c", "depth": 2, "path": ["planasonix:p", "airflow:d"], "event_id": "e", "route": "r"}
        now = datetime(2026, 11, 24, 2, 15, 0, tzinfo=timezone.utc)
        msg = build_message("d", "r", "success", start, end, lineage, now=now)
        self.assertEqual(
            msg,
            {
                "id": webhook_id("d", "r", "success"),
                "type": EVENT_TYPE,
                "created_at": "2026-11-24T02:15:00Z",
                "data": {
                    "dag_id": "d",
                    "dag_run_id": "r",
                    "state": "success",
                    "start_date": "2026-11-24T02:14:09.500000Z",
                    "end_date": "2026-11-24T02:14:09Z",
                    "planasonix_bridge": lineage,
                },
            },
        )
        self.assertEqual(EVENT_TYPE, "dag_run.state_changed")
        self.assertEqual(json.loads(encode(msg).decode("utf-8")), msg)

    def test_created_at_is_utc_now_and_dates_may_be_null(self):
        msg = build_message("d", "r", "running", None, None, "as-a-string")
        self.assertRegex(msg["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        created = datetime.fromisoformat(msg["created_at"].replace("Z", "+00:00"))
        self.assertLess(abs((datetime.now(timezone.utc) - created).total_seconds()), 5)
        self.assertIsNone(msg["data"]["start_date"])
        self.assertIsNone(msg["data"]["end_date"])
        self.assertEqual(msg["data"]["planasonix_bridge"], "as-a-string")  # forwarded as is

    def test_naive_datetimes_are_taken_as_utc_and_body_is_utf8(self):
        msg = build_message("dä", "r", "running", datetime(2026, 1, 1, 0, 0, 0), None, {"é": "ü"})
        self.assertEqual(msg["data"]["start_date"], "2026-01-01T00:00:00Z")
        body = encode(msg)
        self.assertIn("dä".encode("utf-8"), body)
        self.assertEqual(json.loads(body), msg)


class ConfigParsing(unittest.TestCase):
    def test_defaults(self):
        cfg, _ = parse_config({"url": "https://bridge.example/webhooks/airflow/default", "secret": VECTOR["secret"]}.get)
        self.assertEqual((cfg.url, cfg.timeout, cfg.tries, cfg.queue_size), ("https://bridge.example/webhooks/airflow/default", 2.0, 3, 1000))
        self.assertEqual(cfg.key, base64.b64decode(VECTOR["secret_without_prefix"]))

    def test_overrides(self):
        cfg, _ = parse_config({"url": "http://127.0.0.1:1/x", "secret": VECTOR["secret_without_prefix"], "timeout": "0.5", "tries": "5", "queue_size": "7"}.get)
        self.assertEqual((cfg.timeout, cfg.tries, cfg.queue_size), (0.5, 5, 7))

    def test_inert_without_url_or_secret_or_with_a_bad_secret(self):
        for values in ({}, {"url": "http://x/y"}, {"secret": VECTOR["secret"]}, {"url": "http://x/y", "secret": "whsec_%%%"}, {"url": "ftp://x", "secret": VECTOR["secret"]}):
            cfg, reason = parse_config(values.get)
            self.assertIsNone(cfg, values)
            self.assertTrue(re.search(r"planasonix_bridge", reason), reason)


if __name__ == "__main__":
    unittest.main()
