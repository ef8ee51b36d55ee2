"""Announce revisions of past days to a Slack-compatible incoming webhook."""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from orders_etl.config import NotifySettings

log = logging.getLogger(__name__)
WEBHOOK_VARIABLE = "ORDERS_ETL_REVISION_WEBHOOK"


def revision_payload(run_id: str, as_of: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Build the webhook body: Slack's `text`, plus the revision rows for machines."""
    lines = [
        f"{r['order_date']} {r['currency']}: revenue {r['previous_revenue']} -> "
        f"{r['new_revenue']} ({r['revenue_difference']}), orders {r['previous_order_count']} -> "
        f"{r['new_order_count']}"
        for r in rows
    ]
    text = (
        f"orders_etl: late orders revised {len(rows)} past day/currency figure(s) "
        f"as of {as_of} (run {run_id})\n```\n" + "\n".join(lines) + "\n```"
    )
    return {"text": text, "run_id": run_id, "as_of": as_of, "revisions": [dict(r) for r in rows]}


def post_json(url: str, payload: Mapping[str, Any], settings: NotifySettings) -> str:
    """POST `payload` with a timeout and bounded retries; return "sent" or why it failed.

    Never raises and never puts the URL in a message: it may carry a secret token.
    """
    body = json.dumps(payload, default=str).encode("utf-8")
    problem = "not attempted"
    for attempt in range(1, settings.attempts + 1):
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=settings.timeout_seconds) as response:
                if 200 <= response.status < 300:
                    return "sent"
                problem = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
        except (
            urllib.error.URLError,
            http.client.HTTPException,
            TimeoutError,
            OSError,
            ValueError,
        ) as exc:
            reason = getattr(exc, "reason", exc)
            problem = type(reason).__name__ if not isinstance(reason, str) else "connection error"
        log.warning("revision webhook attempt %d failed: %s", attempt, problem)
        if attempt < settings.attempts:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
    return f"failed after {settings.attempts} attempts: {problem}"
