"""Whole checkouts through the edge, with the CPU they cost and the webhook → enrollment latency.

Needs a running stack (`EDGE_RATE_LIMIT_RPS=100000 make run`); a benchmark, not a test.

    .venv/bin/python bench/checkout.py [--checkouts 200] [--concurrency 8]

One checkout = create cart, estimate, place order (with an Idempotency-Key; the payment session
opens at the gateway emulator), pay at the emulator (which sends the signed webhook to the edge),
and waits for the order to become `fulfilled` (webhook → outbox → NATS → enrollment consumer)
by watching the database, so no polling traffic is charged to the checkout.

CPU: the user+system time of every process `make run` started (services, Envoy, PostgreSQL with
all its backends, Redis, NATS; the emulator reported apart, it stands in for the gateway) over the
run, divided by the number of checkouts. Latency, from the database's own clocks: the webhook's
arrival (webhook_events.received_at of the payment.captured event) to the enrollment's commit
(enrollments.created_at, the consumer's transaction).
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import time
import uuid

import httpx
import psutil
import psycopg
from sqlalchemy.engine import make_url

from common.auth import mint_token
from common.config import load_settings
from devstack import pidfiles
from devstack.layout import RunDir

ROOT = pathlib.Path(__file__).resolve().parent.parent
PLAN = "7a1e0000-0000-4000-8000-000000000103"


def stack_processes() -> dict[str, list[psutil.Process]]:
    found: dict[str, list[psutil.Process]] = {}
    for record in pidfiles.read_all(RunDir.for_base(ROOT)):
        if record.supervisor:
            continue
        try:
            process = psutil.Process(record.pid)
            found[record.name] = [process, *process.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    return found


def cpu_seconds(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for name, group in processes.items():
        total = 0.0
        for process in group:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        totals[name] = total
    return totals


async def one_checkout(client: httpx.AsyncClient, emulator: httpx.AsyncClient, token: str, placed: list[str]) -> None:
    auth = {"authorization": f"Bearer {token}"}
    cart = (await client.post("/api-proxy/api/cart", json={"items": [{"plan_id": PLAN, "quantity": 1}]}, headers=auth)).json()
    estimate = await client.post("/api/v1/cart/estimate", json={"cart_token": cart["token"], "billing": {"country": "IN", "state": "MH"}}, headers=auth)
    estimate.raise_for_status()
    order = await client.post("/api/v1/order", json={"cart_token": cart["token"]}, headers={**auth, "idempotency-key": str(uuid.uuid4())})
    order.raise_for_status()
    body = order.json()
    (await emulator.post(f"/_emulator/orders/{body['payment']['gateway_order_id']}/pay", json={})).raise_for_status()
    placed.append(body["order_token"])


async def wait_fulfilled(conn: psycopg.AsyncConnection, orders: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await (await conn.execute("SELECT count(*) FROM orders WHERE order_token = ANY(%s) AND status = 'fulfilled'",
                                        (orders,))).fetchone()
        if row and row[0] == len(orders):
            return
        await asyncio.sleep(0.05)
    raise SystemExit("not every order was fulfilled within a minute")


async def webhook_to_enrollment_ms(conn: psycopg.AsyncConnection, orders: list[str]) -> list[float]:
    rows = await (await conn.execute("""
        SELECT EXTRACT(EPOCH FROM e.created_at - w.received_at) * 1000
        FROM enrollments e
        JOIN orders o ON o.order_token = e.order_token
        JOIN payment_tokens p ON p.order_token = o.order_token AND p.status = 'captured'
        JOIN webhook_events w ON w.gateway = 'razorpay' AND w.event_type = 'payment.captured'
             AND convert_from(w.body, 'UTF8')::jsonb #>> '{payload,payment,entity,order_id}' = p.gateway_order_id
        WHERE e.order_token = ANY(%s)""", (orders,))).fetchall()
    return [float(row[0]) for row in rows]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--checkouts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    settings = load_settings()
    processes = stack_processes()
    if not processes:
        raise SystemExit("no running stack found in .run/ (start it with `make run`)")
    emulator_url = f"http://127.0.0.1:{settings.gateway_emulator_port}"
    placed: list[str] = []
    database = make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    async with httpx.AsyncClient(base_url=args.url, timeout=30) as client, httpx.AsyncClient(base_url=emulator_url, timeout=30) as emulator, \
            await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        tokens = [mint_token(settings, str(uuid.uuid4())) for _ in range(args.checkouts)]
        warm: list[str] = []
        await one_checkout(client, emulator, tokens[0], warm)  # warm-up, not counted
        await wait_fulfilled(conn, warm)
        processes = stack_processes()  # again: PostgreSQL backends opened by the warm-up count too
        before, started = cpu_seconds(processes), time.perf_counter()
        queue = iter(tokens[1:])

        async def worker() -> None:
            for token in queue:
                await one_checkout(client, emulator, token, placed)

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        await wait_fulfilled(conn, placed)
        elapsed, after = time.perf_counter() - started, cpu_seconds(processes)
        latencies = await webhook_to_enrollment_ms(conn, placed)
    done = len(placed)
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    ours = sum(value for name, value in spent.items() if name != "gateway_emulator")
    print(f"{done} checkouts in {elapsed:.1f} s ({done / elapsed:.1f}/s, concurrency {args.concurrency})")
    print(f"CPU per checkout, all stack processes but the emulator: {ours / done * 1000:.1f} ms")
    for name, value in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {name:18} {value / done * 1000:7.2f} ms")
    ordered = sorted(latencies)
    pick = lambda f: ordered[min(len(ordered) - 1, int(f * len(ordered)))]  # noqa: E731
    print(f"webhook received → enrollment committed ({len(ordered)} checkouts): "
          f"p50 {pick(0.5):.0f} ms, p95 {pick(0.95):.0f} ms, p99 {pick(0.99):.0f} ms, mean {statistics.mean(ordered):.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
