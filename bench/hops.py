"""Where the webhook → enrollment time goes, hop by hop, from what the stack records anyway: the
commit timestamps of PostgreSQL (track_commit_timestamp) and the webhook_events row's received_at
(payment_svc's clock when its handler began). Used by checkout.py. (An outbox row's published_at
is not a hop's end: the relay sets it up to MARK_LINGER_SECONDS after the PubAck, with its next read.)"""

from __future__ import annotations

import psycopg

HOPS = (
    ("emulator sends → payment_svc's handler begins", "sent", "received"),
    ("handler begins → capture committed", "received", "captured"),
    ("capture → order paid (relay, NATS, order_svc)", "captured", "paid"),
    ("paid → enrollment (relay, NATS, enrollment_svc)", "paid", "enrolled"),
)

_MOMENTS = """
SELECT o.order_token::text,
       extract(epoch FROM w.received_at)::float8,
       extract(epoch FROM pg_xact_commit_timestamp(s.xmin))::float8,
       (SELECT extract(epoch FROM pg_xact_commit_timestamp(d.xmin))::float8 FROM ordering.tax_documents d
         WHERE d.order_token = o.order_token ORDER BY d.issued_at LIMIT 1),
       (SELECT extract(epoch FROM min(pg_xact_commit_timestamp(e.xmin)))::float8 FROM enrollment.enrollments e
         WHERE e.order_token = o.order_token)
FROM ordering.orders o
JOIN payment.payment_sessions s ON s.token = o.payment_token
JOIN payment.webhook_events w ON w.event_id = ANY(%s) AND w.subject = s.gateway_payment_id || ':payment.captured'
WHERE o.order_token = ANY(%s::uuid[])
"""


async def moments(conn: psycopg.AsyncConnection, orders: list[str], event_ids: list[str]) -> dict[str, dict[str, float]]:
    """order token → {moment: epoch seconds} (received, captured, paid, enrolled)."""
    rows = await (await conn.execute(_MOMENTS, (event_ids, orders))).fetchall()
    names = ("received", "captured", "paid", "enrolled")
    return {token: dict(zip(names, values, strict=True)) for token, *values in rows if None not in values}


def report(times: dict[str, dict[str, float]], percentile) -> None:
    print(f"  by hop ({len(times)} checkouts; ms, p50 / p95):")
    for label, start, end in HOPS:
        ordered = sorted((t[end] - t[start]) * 1000 for t in times.values())
        if ordered:
            print(f"    {label:50} {percentile(ordered, 0.5):7.0f} {percentile(ordered, 0.95):7.0f}")
