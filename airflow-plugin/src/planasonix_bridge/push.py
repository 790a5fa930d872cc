"""Standard Webhooks signing and the non-blocking pusher.

Standard library only, no Airflow import: the listener (``listener.py``) turns a DagRun into
a small message dict and hands it to :meth:`Pusher.submit`, which never blocks and never
raises; one daemon thread per process posts the messages to the bridge.
"""
from __future__ import annotations

import atexit
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Optional

from ._version import __version__

log = logging.getLogger("planasonix_bridge")

EVENT_TYPE = "dag_run.state_changed"
USER_AGENT = f"planasonix-bridge-airflow-plugin/{__version__}"
DEFAULT_TIMEOUT = 2.0
DEFAULT_TRIES = 3
DEFAULT_QUEUE_SIZE = 1000
BACKOFF_BASE = 0.2  # seconds: 0.2, 0.4, 0.8 ... between tries


# --------------------------------------------------------------------------- signing


def webhook_id(dag_id: str, dag_run_id: str, state: str) -> str:
    """``af_`` + first 32 hex of sha256("dag_id\\ndag_run_id\\nstate"): the same for every retry
    and every restart, so the bridge deduplicates a state change it already has."""
    digest = hashlib.sha256(f"{dag_id}\n{dag_run_id}\n{state}".encode("utf-8")).hexdigest()
    return "af_" + digest[:32]


def decode_secret(secret: str) -> bytes:
    """``whsec_<base64>`` (prefix optional) -> key bytes; ValueError if not base64."""
    raw = secret.strip()
    if raw.startswith("whsec_"):
        raw = raw[len("whsec_"):]
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("secret is not base64 (expected whsec_<base64>)") from exc
    if not key:
        raise ValueError("secret is empty")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks v1: base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode("utf-8") + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


# --------------------------------------------------------------------------- body


def iso(value: Any) -> Optional[str]:
    """A datetime as ISO 8601 in UTC (``...Z``); None stays None; anything else str()."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)  # Airflow stores UTC
        text = value.astimezone(timezone.utc).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return str(value)


def build_message(
    dag_id: str,
    dag_run_id: str,
    state: str,
    start_date: Any,
    end_date: Any,
    lineage: Any,
    now: Optional[datetime] = None,
) -> dict:
    """The JSON body of one push (a plain dict; :func:`encode` makes the bytes)."""
    msg_id = webhook_id(dag_id, dag_run_id, state)
    return {
        "id": msg_id,
        "type": EVENT_TYPE,
        "created_at": iso(now or datetime.now(timezone.utc)),
        "data": {
            "dag_id": dag_id,
            "dag_run_id": dag_run_id,
            "state": state,
            "start_date": iso(start_date),
            "end_date": iso(end_date),
            "planasonix_bridge": lineage,
        },
    }


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def signed_request(url: str, key: bytes, message: Mapping[str, Any], timestamp: Optional[int] = None):
    """(body bytes, headers) for one POST; the timestamp is the send time unless given."""
    body = encode(message)
    ts = int(time.time()) if timestamp is None else int(timestamp)
    msg_id = str(message["id"])
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(key, msg_id, ts, body),
        "user-agent": USER_AGENT,
    }
    return body, headers


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Config:
    url: str
    key: bytes
    timeout: float = DEFAULT_TIMEOUT
    tries: int = DEFAULT_TRIES
    queue_size: int = DEFAULT_QUEUE_SIZE


def parse_config(get: Callable[[str], Optional[str]]) -> "tuple[Optional[Config], str]":
    """Config from ``get(key)`` (Airflow's ``[planasonix_bridge]`` section); (None, reason)
    when the plugin must stay inert."""
    url = (get("url") or "").strip()
    secret = (get("secret") or "").strip()
    if not url or not secret:
        return None, "[planasonix_bridge] url and secret are not both set"
    if not url.startswith(("http://", "https://")):
        return None, f"[planasonix_bridge] url must be http(s)://, got {url[:40]!r}"
    try:
        key = decode_secret(secret)
    except ValueError as exc:
        return None, f"[planasonix_bridge] {exc}"

    def number(name: str, kind: type, default: Any, minimum: Any) -> Any:
        raw = (get(name) or "").strip()
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            log.warning("planasonix_bridge: [planasonix_bridge] %s=%r is not a number; using %s", name, raw, default)
            return default
        return max(value, minimum)

    return (
        Config(
            url=url,
            key=key,
            timeout=number("timeout", float, DEFAULT_TIMEOUT, 0.05),
            tries=number("tries", int, DEFAULT_TRIES, 1),
            queue_size=number("queue_size", int, DEFAULT_QUEUE_SIZE, 1),
        ),
        "",
    )


# --------------------------------------------------------------------------- pusher


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect means a wrong url; never turn the POST into a GET elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401
        return None


class Pusher:
    """Bounded queue + one daemon worker thread (per process: re-created after a fork).

    ``submit`` only does ``put_nowait``; everything that can be slow or fail (encoding,
    signing, HTTP, backoff) happens on the worker, inside ``try``.
    """

    def __init__(self, config: Config, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect())
        self._lock = threading.Lock()
        self._pid: Optional[int] = None
        self._queue: "queue.Queue[dict]" = queue.Queue(maxsize=config.queue_size)
        self._thread: Optional[threading.Thread] = None
        self._atexit = False
        # Counters, for tests and for a log line a human can read.
        self.sent = 0
        self.dropped_full = 0
        self.dropped_failed = 0

    # called from Airflow's hooks: must never block or raise
    def submit(self, message: dict) -> bool:
        try:
            self._ensure_worker()
            self._queue.put_nowait(message)
            return True
        except queue.Full:
            self.dropped_full += 1
            log.warning(
                "planasonix_bridge: push queue full (%d); dropped %s for %s/%s (the bridge's polling will see it)",
                self.config.queue_size,
                message.get("data", {}).get("state"),
                message.get("data", {}).get("dag_id"),
                message.get("data", {}).get("dag_run_id"),
            )
        except Exception:  # pragma: no cover - defensive
            log.warning("planasonix_bridge: could not enqueue a push", exc_info=True)
        return False

    def _ensure_worker(self) -> None:
        pid = os.getpid()
        if self._pid == pid and self._thread is not None and self._thread.is_alive():
            return
        # Non-blocking acquire: a lock copied locked into a forked child must not hang a hook.
        if not self._lock.acquire(blocking=False):
            if self._pid != pid:
                self._lock = threading.Lock()
                self._lock.acquire()
            else:
                return  # another thread is starting the worker right now
        try:
            if self._pid != pid:
                # After fork: the parent's queue (and its mutex) may be in any state.
                self._queue = queue.Queue(maxsize=self.config.queue_size)
                self._pid = pid
                self._thread = None
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="planasonix-bridge-push", daemon=True)
                self._thread.start()
            if not self._atexit:
                self._atexit = True
                atexit.register(self._drain_at_exit)
        finally:
            self._lock.release()

    def _run(self) -> None:
        q = self._queue
        while True:
            try:
                message = q.get()
            except Exception:  # pragma: no cover
                continue
            try:
                self.deliver(message)
            except Exception:  # pragma: no cover - deliver catches already
                log.warning("planasonix_bridge: push worker error", exc_info=True)
            finally:
                q.task_done()

    def deliver(self, message: Mapping[str, Any]) -> bool:
        """POST with up to ``tries`` attempts and 0.2 s, 0.4 s ... between them."""
        tries = self.config.tries
        problem = ""
        for attempt in range(1, tries + 1):
            try:
                status = self._post(message)
                if 200 <= status < 300:
                    self.sent += 1
                    log.debug("planasonix_bridge: pushed %s (HTTP %d)", message.get("id"), status)
                    return True
                problem = f"HTTP {status}"
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}"
                try:
                    exc.close()
                except Exception:
                    pass
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < tries:
                self._sleep(BACKOFF_BASE * (2 ** (attempt - 1)))
        self.dropped_failed += 1
        data = message.get("data", {})
        log.warning(
            "planasonix_bridge: push of %s %s/%s to %s dropped after %d tries (%s); the bridge's polling will see it",
            data.get("state"),
            data.get("dag_id"),
            data.get("dag_run_id"),
            self.config.url,
            tries,
            problem,
        )
        return False

    def _post(self, message: Mapping[str, Any]) -> int:
        body, headers = signed_request(self.config.url, self.config.key, message)
        req = urllib.request.Request(self.config.url, data=body, headers=headers, method="POST")
        with self._opener.open(req, timeout=self.config.timeout) as resp:
            resp.read(65536)
            return resp.status

    def flush(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until every queued push was sent or dropped."""
        q = self._queue
        deadline = time.monotonic() + timeout
        with q.all_tasks_done:
            while q.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                q.all_tasks_done.wait(left)
        return True

    def _drain_at_exit(self) -> None:
        # A process that exits right after a state change gets a short, bounded chance to
        # send it; never longer than one POST timeout.
        try:
            if self._pid == os.getpid():
                self.flush(min(self.config.timeout, 2.0))
        except Exception:
            pass
