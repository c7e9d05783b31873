"""Whole checkouts through the edge, with the CPU they cost and the webhook → enrollment latency.

Needs a running stack (`EDGE_RATE_LIMIT_RPS=100000 make run`) whose PostgreSQL has
track_commit_timestamp on (the embedded one does); a benchmark, not a test.

    .venv/bin/python bench/checkout.py [--checkouts 200] [--concurrency 8]

One checkout = create cart, estimate, place order (with an Idempotency-Key; the payment session
opens at the gateway emulator), pay at the emulator (which then sends the signed webhooks
payment.captured and order.paid to the edge), and the enrollment: payment_svc's outbox → NATS →
order_svc (paid) → order.paid → enrollment_svc (one enrollment per line) → enrollment.created →
order_svc, which moves the order to `fulfilled`. `--concurrency` checkouts run at once;
one round of warm-up checkouts (one per worker) is not counted.

Throughput: checkouts / (first request sent → last enrollment committed).

CPU (see cpu_accounting.py): the machine's busy time over the window, minus the load generator's
(this process and its PostgreSQL connection) and the gateway emulator's (it stands in for the
gateway; shown apart), divided by the checkouts. Below it, the breakdown by process group of
`make run` (each service, Envoy, NATS, Redis, PostgreSQL with every backend that ran, exited ones
included) and what the groups do not explain: on a busy machine, mostly other people's processes.

Latency, per checkout, on the machine's wall clock (every process is on this machine): from the
emulator's first attempt to send payment.captured (just before it connects to the edge) to the
commit of the transaction that inserted the enrollment (pg_xact_commit_timestamp); then the same
time hop by hop (hops.py: the handler's start, the commits, the relays' published_at).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import pathlib
import ssl
import statistics
import time
import uuid

import cpu_accounting
import hops
import httpx
import psycopg
from sqlalchemy.engine import make_url

from common.auth import mint_token
from common.settings import load_settings
from devstack import pidfiles
from devstack.layout import RunDir

ROOT = pathlib.Path(__file__).resolve().parent.parent
PLAN = "7a1e0000-0000-4000-8000-000000000103"
EMULATOR = "gateway_emulator"
LABELS = {"edge": "edge (Envoy)", "postgres": "postgres (every backend)"}
POLL_SECONDS = 0.02


@dataclasses.dataclass(frozen=True)
class Placed:
    order_token: str
    webhook_event_ids: tuple[str, ...]


def stack_roots() -> dict[str, int]:
    return {record.name: record.pid for record in pidfiles.read_all(RunDir.for_base(ROOT))
            if not record.supervisor and pidfiles.is_alive(record)}


async def one_checkout(client: httpx.AsyncClient, emulator: httpx.AsyncClient, token: str) -> Placed:
    auth = {"authorization": f"Bearer {token}"}
    cart = (await client.post("/api-proxy/api/cart", json={"items": [{"plan_id": PLAN, "quantity": 1}]}, headers=auth)).json()
    estimate = await client.post("/api/v1/cart/estimate", json={"cart_token": cart["token"], "billing": {"country": "IN", "state": "MH"}}, headers=auth)
    estimate.raise_for_status()
    order = await client.post("/api/v1/order", json={"cart_token": cart["token"]}, headers={**auth, "idempotency-key": str(uuid.uuid4())})
    order.raise_for_status()
    body = order.json()
    paid = await emulator.post(f"/_emulator/orders/{body['payment']['gateway_order_id']}/pay", json={})
    paid.raise_for_status()
    return Placed(body["order_token"], tuple(paid.json()["webhook_event_ids"]))


async def run_checkouts(client: httpx.AsyncClient, emulator: httpx.AsyncClient, tokens: list[str], concurrency: int) -> list[Placed]:
    placed: list[Placed] = []
    queue = iter(tokens)

    async def worker() -> None:
        for token in queue:
            placed.append(await one_checkout(client, emulator, token))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return placed


async def wait_fulfilled(conn: psycopg.AsyncConnection, orders: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await (await conn.execute("SELECT count(*) FROM ordering.orders WHERE order_token = ANY(%s::uuid[]) AND status = 'fulfilled'",
                                        (orders,))).fetchone()
        if row and row[0] == len(orders):
            return
        await asyncio.sleep(POLL_SECONDS)
    raise SystemExit(f"not every order was fulfilled within {timeout:.0f} s")


async def commit_times(conn: psycopg.AsyncConnection, orders: list[str]) -> dict[str, float]:
    rows = await (await conn.execute(
        "SELECT order_token::text, EXTRACT(EPOCH FROM pg_xact_commit_timestamp(xmin))::float8 FROM enrollment.enrollments"
        " WHERE order_token = ANY(%s::uuid[])", (orders,))).fetchall()
    return {token: at for token, at in rows}


async def first_sends(emulator: httpx.AsyncClient) -> dict[str, float]:
    """payment.captured event id → wall-clock time its first delivery attempt began."""
    log = (await emulator.get("/_emulator/webhooks", params={"gateway": "razorpay"})).raise_for_status().json()
    sends: dict[str, float] = {}
    for event in log["events"]:
        if event["event"] == "payment.captured" and event["attempts"]:
            # The emulator stamps an attempt when it ends; its duration takes us back to the start.
            sends[event["id"]] = min(a["at"] - a["duration_ms"] / 1000 for a in event["attempts"])
    return sends


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(args: argparse.Namespace, done: int, seconds: float, cpu: cpu_accounting.Cpu, latencies: list[float]) -> None:
    def per(seconds: float) -> float:
        return seconds / done * 1000
    groups = dict(cpu.groups)
    emulator = groups.pop(EMULATOR)
    stack = cpu.machine - cpu.generator - emulator
    print(f"{done} checkouts at concurrency {args.concurrency} (after {args.concurrency} warm-up checkouts), "
          f"{seconds:.1f} s from the first request to the last enrollment's commit: {done / seconds:.1f} checkouts/s")
    print(f"CPU per checkout: {per(stack):.1f} ms = machine busy time minus the load generator and the emulator "
          f"(machine {cpu.machine:.1f} s of {cpu.wall * cpu_accounting.cpu_count():.1f} s available on "
          f"{cpu_accounting.cpu_count()} CPUs over {cpu.wall:.1f} s)")
    print(f"  breakdown by process group, ms per checkout (processes that came and went included; "
          f"stack processes {per(sum(groups.values())):.1f}):")
    for name, value in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"    {LABELS.get(name, name):24} {per(value):7.1f}")
    print(f"    {'unattributed':24} {per(cpu.unattributed):7.1f}  (machine minus all of the above and the generator:"
          " other processes, kernel threads, tick rounding)")
    print(f"  apart: gateway emulator {per(emulator):.1f} ms, load generator {per(cpu.generator):.1f} ms "
          "(this process and its PostgreSQL connection)")
    if cpu.unattributed > 0.1 * stack:
        print("  note: over 10% unattributed: the machine was not quiet, so the total above includes others' work")
    ordered = sorted(latencies)
    print(f"webhook sent by the emulator → enrollment committed ({len(ordered)} checkouts): p50 {percentile(ordered, 0.5):.0f} ms, "
          f"p95 {percentile(ordered, 0.95):.0f} ms, p99 {percentile(ordered, 0.99):.0f} ms, max {ordered[-1]:.0f} ms, "
          f"mean {statistics.mean(ordered):.0f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080",
                        help="the edge; https://localhost:8443 measures HTTPS at the edge (with --cacert)")
    parser.add_argument("--cacert", default=str(ROOT / ".run" / "certs" / "ca.pem"),
                        help="CA of the edge's HTTPS certificate (default: make run's development CA)")
    parser.add_argument("--checkouts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    settings = load_settings()
    roots = stack_roots()
    if EMULATOR not in roots:
        raise SystemExit("no running stack found in .run/ (start it with `EDGE_RATE_LIMIT_RPS=100000 make run`)")
    emulator_url = f"http://127.0.0.1:{settings.gateway_emulator_port}"
    database = make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    verify = ssl.create_default_context(cafile=args.cacert) if args.url.startswith("https:") else True
    async with httpx.AsyncClient(base_url=args.url, timeout=30, verify=verify) as client, httpx.AsyncClient(base_url=emulator_url, timeout=30) as emulator, \
            await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        if await (await conn.execute("SHOW track_commit_timestamp")).fetchone() != ("on",):
            raise SystemExit("PostgreSQL needs track_commit_timestamp = on (the embedded one of `make run` has it)")
        tokens = [mint_token(settings, str(uuid.uuid4())) for _ in range(args.checkouts + args.concurrency)]
        warm = await run_checkouts(client, emulator, tokens[:args.concurrency], args.concurrency)
        await wait_fulfilled(conn, [p.order_token for p in warm])

        opening, started = cpu_accounting.sample(roots, (conn.info.backend_pid,), closing=False), time.time()
        placed = await run_checkouts(client, emulator, tokens[args.concurrency:], args.concurrency)
        orders = [p.order_token for p in placed]
        await wait_fulfilled(conn, orders)
        cpu = cpu_accounting.sample(roots, (conn.info.backend_pid,), closing=True) - opening

        committed, sends = await commit_times(conn, orders), await first_sends(emulator)
        moments = await hops.moments(conn, orders, list(sends))
    latencies = []
    for p in placed:
        sent = [sends[event] for event in p.webhook_event_ids if event in sends]
        if len(sent) != 1 or p.order_token not in committed:
            raise SystemExit(f"order {p.order_token}: no single payment.captured webhook or no enrollment commit time")
        latencies.append((committed[p.order_token] - sent[0]) * 1000)
        if p.order_token in moments:
            moments[p.order_token]["sent"] = sent[0]
    report(args, len(placed), max(committed.values()) - started, cpu, latencies)
    hops.report({token: times for token, times in moments.items() if "sent" in times}, percentile)


if __name__ == "__main__":
    asyncio.run(main())
