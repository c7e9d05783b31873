"""Chaos under load, on the stack `make run-ha` starts (devstack/commands.start_stack, the same code):
while clients run whole checkouts through the edge, SIGKILL one replica of each service, then the
NATS node that leads the stream the enrollments come through, then restart them all. Afterwards:
every captured payment has exactly one enrollment per order line and its order is fulfilled, no
order was captured twice nor has two enrollments for a line, every outbox is drained, one relay
leads each schema, and every answer a client saw was a success or a retryable error (the contract's
`retryable: true`) that succeeded when retried. The counts are printed (`pytest -s`).

CHAOS_SECONDS (default 30) is how long the load runs; `make chaos` runs it for 120.
Ports: a free block (PORT_BLOCK); data: the test's temp dir; never the machine's servers.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import random
import re
import shutil
import time
import uuid
from pathlib import Path

import httpx
import nats
import psycopg
import pytest

from common.auth import mint_token
from common.settings import load_settings
from devstack import commands, ha
from devstack.layout import RunDir
from devstack.ports import port_in_use
from devstack.processes import Supervisor

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PROJECT = Path(__file__).resolve().parents[2]
PLAN = "7a1e0000-0000-4000-8000-000000000103"
SECOND_PLAN = "7a1e0000-0000-4000-8000-000000000203"  # another internship: every other order has two lines
SECONDS = float(os.environ.get("CHAOS_SECONDS") or 30)
CLIENTS = 4
# how long a client keeps retrying one request: a CreateOrder whose process was killed holds its
# Idempotency-Key for ORDER_IDEMPOTENCY_LEASE (30 s), answering 2006 (retryable) meanwhile
RETRY_WINDOW = 45.0
RETRY_PAUSE = 0.5
DRAIN_SECONDS = 120
STEP = 30  # REPLICA_PORT_STEP
PORT_BLOCK = 2 * STEP
SCHEMAS = ("cart", "ordering", "payment", "enrollment")
LEADER_METRIC = re.compile(r'^checkout_outbox_relay_leader\{schema="(\w+)"\} ([0-9.]+)$', re.M)


def _free_block() -> int:
    """A base port with PORT_BLOCK free ports from it (checked now; racy, but a wide range)."""
    low, _ = (int(part) for part in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(200):
        # below the kernel's ephemeral range: a client socket there would make a bind fail
        base = random.randrange(min(20000, low - 5000), low - PORT_BLOCK)
        if not any(port_in_use(port) for port in range(base, base + PORT_BLOCK)):
            return base
    raise RuntimeError("no free block of ports")


def _environment(base: int, tmp: Path) -> dict[str, str]:
    ports = {
        "EDGE_PORT": 0, "EDGE_TLS_PORT": 1, "EDGE_ADMIN_PORT": 2, "GATEWAY_EMULATOR_PORT": 3, "TRACE_RECEIVER_PORT": 4,
        "HA_POSTGRES_PORT": 5, "HA_POSTGRES_REPLICA_PORT": 6, "HA_REDIS_PORT": 7,
        "CART_GRPC_PORT": 8, "ORDER_GRPC_PORT": 9, "PAYMENT_GRPC_PORT": 10, "ENROLLMENT_GRPC_PORT": 11,
        "CART_METRICS_PORT": 12, "ORDER_METRICS_PORT": 13, "PAYMENT_METRICS_PORT": 14, "ENROLLMENT_METRICS_PORT": 15,
    }
    env = {key: value for key, value in os.environ.items() if not key.endswith("_URL")}
    env.update({key: str(base + offset) for key, offset in ports.items()})
    env.update({
        "HA_NATS_PORTS": ",".join(str(base + 16 + i) for i in range(3)),
        "HA_NATS_ROUTE_PORTS": ",".join(str(base + 19 + i) for i in range(3)),
        "REPLICA_PORT_STEP": str(STEP),
        "EDGE_RATE_LIMIT_RPS": "100000",
        "TRACING": "0",
        "TRACING_DIR": str(tmp / "traces"),
        "LOG_LEVEL": "WARNING",
        # a payment whose webhooks all failed is found by the reconciler of either replica
        "PAYMENT_RECONCILE_AFTER": "5", "PAYMENT_RECONCILE_INTERVAL": "2",
    })
    return env


@dataclasses.dataclass
class Tally:
    checkouts: int = 0
    requests: int = 0
    retryable: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    recovered: int = 0  # requests that got a retryable error first and then succeeded
    failures: list[str] = dataclasses.field(default_factory=list)
    paid_orders: list[str] = dataclasses.field(default_factory=list)


class Client:
    def __init__(self, http: httpx.AsyncClient, emulator: httpx.AsyncClient, tally: Tally) -> None:
        self.http, self.emulator, self.tally = http, emulator, tally

    async def send(self, step: str, request: httpx.Request, via: httpx.AsyncClient | None = None) -> dict:
        """The answer's JSON once it succeeds; a retryable error is retried as it is (same key)."""
        client = via or self.http
        saw_error = False
        deadline = time.monotonic() + RETRY_WINDOW
        while time.monotonic() < deadline:
            self.tally.requests += 1
            try:
                response = await client.send(request)
            except httpx.TransportError as error:
                self.tally.retryable[f"{step}: {type(error).__name__}"] += 1
                saw_error = True
                await asyncio.sleep(RETRY_PAUSE)
                continue
            if response.status_code < 400:
                self.tally.recovered += saw_error
                return dict(response.json())
            body = _json(response)
            error = body.get("error") if isinstance(body.get("error"), dict) else {}
            if error.get("retryable") is True:
                self.tally.retryable[f"{step}: {response.status_code}/{error.get('code')}"] += 1
                saw_error = True
                await asyncio.sleep(RETRY_PAUSE)
                continue
            raise AssertionError(f"{step}: {response.status_code} {response.text[:300]}")
        raise AssertionError(f"{step}: still a retryable error after {RETRY_WINDOW:.0f}s")

    async def checkout(self, token: str) -> None:
        auth = {"authorization": f"Bearer {token}"}
        plans = [PLAN, SECOND_PLAN][:1 + self.tally.checkouts % 2]
        await self.send("catalog", self.http.build_request("GET", "/api/v1/internships"))
        cart = await self.send("cart", self.http.build_request(
            "POST", "/api-proxy/api/cart", json={"items": [{"plan_id": plan, "quantity": 1} for plan in plans]}, headers=auth))
        await self.send("estimate", self.http.build_request(
            "POST", "/api/v1/cart/estimate", json={"cart_token": cart["token"],
                                                   "billing": {"country": "IN", "state": "MH"}}, headers=auth))
        order = await self.send("order", self.http.build_request(
            "POST", "/api/v1/order", json={"cart_token": cart["token"]},
            headers={**auth, "idempotency-key": str(uuid.uuid4())}))
        await self.send("pay", self.emulator.build_request(
            "POST", f"/_emulator/orders/{order['payment']['gateway_order_id']}/pay", json={}), via=self.emulator)
        self.tally.paid_orders.append(order["order_token"])
        self.tally.checkouts += 1


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def _load(client: Client, settings, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await client.checkout(mint_token(settings, str(uuid.uuid4())))
        except AssertionError as failure:
            client.tally.failures.append(str(failure))


async def _stream_leader(nats_url: str, stream: str) -> str:
    nc = await nats.connect(nats_url.split(","), connect_timeout=2)
    try:
        info = await nc.jetstream().stream_info(stream)
        assert info.cluster is not None and info.cluster.leader, info
        return str(info.cluster.leader)
    finally:
        await nc.close()


async def _chaos(supervisor: Supervisor, env: dict[str, str], log: list[str]) -> None:
    """Kill one replica of each service, then the stream's NATS leader; later restart them all."""
    await asyncio.sleep(SECONDS * 0.2)
    killed = [supervisor.kill(ha.replica_name(name, 0)) for name in ha.REPLICATED]
    log.append(f"killed {', '.join(spec.name for spec in killed)}")
    await asyncio.sleep(3)
    leader = await _stream_leader(env["NATS_URL"], load_settings(env).nats_stream)
    killed.append(supervisor.kill(f"nats_{leader}"))
    log.append(f"killed nats_{leader}, the leader of the stream {load_settings(env).nats_stream}")
    await asyncio.sleep(SECONDS * 0.3)
    await asyncio.to_thread(supervisor.start, killed, 60.0)
    log.append(f"restarted {', '.join(spec.name for spec in killed)}")


async def _drained(database: str, orders: list[str]) -> dict[str, object]:
    """Poll until every order paid at the gateway is captured here (its webhook may still be in the
    emulator's retries, or wait for the reconciler), every captured order fulfilled and every
    outbox empty; then what the checks read."""
    deadline = time.monotonic() + DRAIN_SECONDS
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        while True:
            facts = await _facts(conn, orders)
            settled = not facts["unpublished"] and not facts["unfulfilled"] and not facts["paid_not_captured"]
            if settled or time.monotonic() > deadline:
                return facts
            await asyncio.sleep(1)


async def _facts(conn: psycopg.AsyncConnection, orders: list[str]) -> dict[str, object]:
    async def rows(sql: str, *params: object) -> list[tuple]:
        return list(await (await conn.execute(sql, params)).fetchall())

    captured = [row[0] for row in await rows(
        "SELECT DISTINCT order_token::text FROM payment.payment_sessions WHERE status = 'captured'")]
    lines = await rows(
        "SELECT o.order_token::text, o.status, jsonb_array_length(o.items), "
        "(SELECT count(*) FROM enrollment.enrollments e WHERE e.order_token::text = o.order_token::text) "
        "FROM ordering.orders o WHERE o.order_token::text = ANY(%s)", captured)
    return {
        "captured": captured,
        "paid_not_captured": sorted(set(orders) - set(captured)),
        "unfulfilled": [row[0] for row in lines if row[1] != "fulfilled"],
        "enrollments": sum(row[3] for row in lines),
        "two_line_orders": sum(1 for row in lines if row[2] == 2),
        "wrong_enrollment_count": [row for row in lines if row[2] != row[3]],
        "captured_twice": await rows("SELECT order_token FROM payment.payment_sessions WHERE status = 'captured' "
                                     "GROUP BY 1 HAVING count(*) > 1"),
        "line_enrolled_twice": await rows("SELECT order_token, line_no FROM enrollment.enrollments "
                                          "GROUP BY 1, 2 HAVING count(*) > 1"),
        "unpublished": {schema: n for schema in SCHEMAS
                        if (n := (await rows(f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"))[0][0])},
    }


async def _relay_leaders(env: dict[str, str]) -> dict[str, float]:
    """checkout_outbox_relay_leader summed over every replica, per schema."""
    settings = load_settings(env)
    totals: collections.Counter[str] = collections.Counter()
    async with httpx.AsyncClient(timeout=5) as http:
        for service in ("cart", "order", "payment", "enrollment"):
            for i in range(settings.service_replicas):
                port = settings.metrics_port(service) + i * settings.replica_port_step
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                for schema, value in LEADER_METRIC.findall(text):
                    totals[schema] += float(value)
    return dict(totals)


async def _replica_readers(replica: str) -> int:
    """cart_svc's connections to the streaming replica (its catalog reads go there, nothing else)."""
    async with await psycopg.AsyncConnection.connect(replica, autocommit=True) as conn:
        recovering = (await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone() or (False,))[0]
        assert recovering, "the replica is not a standby"
        row = await (await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'checkout-cart'")).fetchone()
        return int(row[0]) if row else 0


async def _edge_stats(admin_port: int) -> dict[str, int]:
    """What Envoy did about it, summed over the service clusters: retries, ejections, failed connects."""
    wanted = ("upstream_rq_retry", "upstream_rq_retry_success", "upstream_rq_retry_overflow", "upstream_cx_connect_fail",
              "outlier_detection.ejections_enforced_total", "upstream_rq_5xx")
    totals: collections.Counter[str] = collections.Counter()
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"http://127.0.0.1:{admin_port}/stats")).text
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        parts = name.split(".", 2)
        if len(parts) == 3 and parts[0] == "cluster" and parts[1] in ("cart", "order", "payment", "enrollment") \
                and parts[2] in wanted and value.strip().isdigit():
            totals[parts[2]] += int(value)
    return dict(totals)


async def test_checkouts_survive_killed_replicas_and_a_killed_nats_leader(tmp_path):
    supervisor = Supervisor(RunDir(tmp_path / ".run"), out=None)
    try:
        began = time.monotonic()
        _, env = await asyncio.to_thread(commands.start_stack, supervisor, PROJECT,
                                         _environment(_free_block(), tmp_path), highly_available=True)
        started = time.monotonic() - began
        settings = load_settings(env)
        tally, log, stop = Tally(), [], asyncio.Event()
        edge = f"http://127.0.0.1:{settings.edge_port}"
        emulator = f"http://127.0.0.1:{settings.gateway_emulator_port}"
        async with httpx.AsyncClient(base_url=edge, timeout=30) as http, \
                httpx.AsyncClient(base_url=emulator, timeout=30) as pay:
            loads = [asyncio.create_task(_load(Client(http, pay, tally), settings, stop)) for _ in range(CLIENTS)]
            chaos = asyncio.create_task(_chaos(supervisor, env, log))
            await asyncio.sleep(SECONDS)
            await chaos
            stop.set()
            await asyncio.gather(*loads)
        database = env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1)
        facts = await _drained(database, tally.paid_orders)
        leaders = await _relay_leaders(env)
        edge_stats = await _edge_stats(settings.edge_admin_port)
        readers = await _replica_readers(env["READ_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1))
        print(f"\nchaos: stack up in {started:.0f}s; {SECONDS:.0f}s of load by {CLIENTS} clients; " + "; ".join(log))
        print(f"  checkouts paid {tally.checkouts}, requests {tally.requests}, retryable errors "
              f"{sum(tally.retryable.values())} ({dict(tally.retryable) or 'none'}), requests that succeeded on a "
              f"retry {tally.recovered}, failures {len(tally.failures)}")
        print(f"  the edge, over the service clusters: {edge_stats}")
        print(f"  captured payments {len(facts['captured'])} ({facts['two_line_orders']} of two lines), enrollments {facts['enrollments']}, wrong enrollment "
              f"counts {len(facts['wrong_enrollment_count'])}, captured twice {len(facts['captured_twice'])}, "
              f"lines enrolled twice {len(facts['line_enrolled_twice'])}, unfulfilled {len(facts['unfulfilled'])}, "
              f"unpublished outbox rows {facts['unpublished'] or 0}, relay leaders {leaders}, cart_svc connections to "
              f"the PostgreSQL replica {readers}")
        assert tally.failures == []
        assert tally.checkouts > 0 and facts["paid_not_captured"] == [] and facts["two_line_orders"] > 0
        assert facts["wrong_enrollment_count"] == [] and facts["unfulfilled"] == []
        assert facts["captured_twice"] == [] and facts["line_enrolled_twice"] == []
        assert facts["unpublished"] == {}
        assert leaders == {schema: 1.0 for schema in SCHEMAS}
        assert readers > 0
    finally:
        await asyncio.to_thread(supervisor.stop_all)
        # PostgreSQL's data went outside the temp dir when its account could not reach it (postgres.py)
        shutil.rmtree(supervisor.run_dir.private_tmp(), ignore_errors=True)
