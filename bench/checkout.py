"""Whole checkouts through the edge, with the CPU they cost and the webhook → enrollment latency.

Needs a running stack (`EDGE_RATE_LIMIT_RPS=100000 make run`); a benchmark, not a test.

    .venv/bin/python bench/checkout.py [--checkouts 200] [--concurrency 8]

One checkout = create cart, estimate, place order (with an Idempotency-Key; the payment session
opens at the gateway emulator), pay at the emulator (which sends the signed webhook to the edge),
then poll the order until it is `fulfilled` (webhook → outbox → NATS → enrollment consumer).

CPU: the user+system time of every process `make run` started (services, Envoy, PostgreSQL with
all its backends, Redis, NATS; the emulator reported apart, it stands in for the gateway) over the
run, divided by the number of checkouts. Latency: from the emulator's payment (just before it
sends the webhook) to the moment the order reads `fulfilled`, polled every 5 ms — an upper bound.
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


async def one_checkout(client: httpx.AsyncClient, emulator: httpx.AsyncClient, token: str, latencies: list[float]) -> None:
    auth = {"authorization": f"Bearer {token}"}
    cart = (await client.post("/api-proxy/api/cart", json={"items": [{"plan_id": PLAN, "quantity": 1}]}, headers=auth)).json()
    estimate = await client.post("/api/v1/cart/estimate", json={"cart_token": cart["token"], "billing": {"country": "IN", "state": "MH"}}, headers=auth)
    estimate.raise_for_status()
    order = await client.post("/api/v1/order", json={"cart_token": cart["token"]}, headers={**auth, "idempotency-key": str(uuid.uuid4())})
    order.raise_for_status()
    body = order.json()
    paid_at = time.perf_counter()
    (await emulator.post(f"/_emulator/orders/{body['payment']['gateway_order_id']}/pay", json={})).raise_for_status()
    while True:
        current = (await client.get(f"/api/v1/order/{body['order_token']}", headers=auth)).json()
        if current["status"] == "fulfilled":
            latencies.append((time.perf_counter() - paid_at) * 1000)
            return
        await asyncio.sleep(0.005)


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
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=args.url, timeout=30) as client, httpx.AsyncClient(base_url=emulator_url, timeout=30) as emulator:
        tokens = [mint_token(settings, str(uuid.uuid4())) for _ in range(args.checkouts)]
        await one_checkout(client, emulator, tokens[0], [])  # warm-up, not counted
        before, started = cpu_seconds(processes), time.perf_counter()
        queue = iter(tokens[1:])

        async def worker() -> None:
            for token in queue:
                await one_checkout(client, emulator, token, latencies)

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed, after = time.perf_counter() - started, cpu_seconds(processes)
    done = len(latencies)
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    ours = sum(value for name, value in spent.items() if name != "gateway_emulator")
    print(f"{done} checkouts in {elapsed:.1f} s ({done / elapsed:.1f}/s, concurrency {args.concurrency})")
    print(f"CPU per checkout, all stack processes but the emulator: {ours / done * 1000:.1f} ms")
    for name, value in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {name:18} {value / done * 1000:7.2f} ms")
    ordered = sorted(latencies)
    pick = lambda f: ordered[min(len(ordered) - 1, int(f * len(ordered)))]  # noqa: E731
    print(f"payment → order fulfilled (webhook, outbox, NATS, consumer; polled): "
          f"p50 {pick(0.5):.0f} ms, p95 {pick(0.95):.0f} ms, p99 {pick(0.99):.0f} ms, mean {statistics.mean(ordered):.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
