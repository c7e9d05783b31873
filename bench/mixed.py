"""Mixed traffic of many students through the edge, at a set rate, with wrk and a Lua script.

Needs a running stack started with a rate limit above the load (`EDGE_RATE_LIMIT_RPS=100000
make run`) and Debian's `wrk` (apt-get install wrk). A benchmark, not a test.

    .venv/bin/python bench/mixed.py [--url http://127.0.0.1:8080] [--rates 1000,1500,2000] [--seconds 20]

10,000 students doing one thing every 10 s each are 1,000 requests/s. What a student does, per
100 requests (MIX): browses the catalog, looks at a cart, asks for the total with tax, opens a
cart, adds a plan, tries the welcome coupon, places an order (the payment session opens at the
gateway emulator) and polls the payment's status while paying (as the order's owner).

Debian's wrk (4.x) has no fixed-rate mode (wrk2's -R): it is a closed loop, each connection
sending its next request when the answer to the last came. Each connection here waits out a think
time first (Lua `delay()`), on average CONNECTIONS x 1000 / rate ms (uniformly spread, so that
the connections do not send in step), so the rate offered is the one asked for
as long as answers take much less than the think time; the rate achieved is printed beside it.
(A slow answer delays that connection's next request, as it would delay a student's: a closed
model, so the p95 is not inflated by requests queued behind a stall, "coordinated omission".)

Before the load: the carts (guest carts of one plan), the carts to order (one per order, each of a
user of its own, with that user's bearer token) and a few orders whose payments are polled. The
carts that get items are added to in turn, so no cart passes the quantity limit.

Per rate: requests/s offered and achieved, p50/p95/p99 over every request, errors (non-2xx and
socket errors), wrk's own CPU (user+system, as a share of one core), and the largest RSS of each
service process seen during the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import resource
import shutil
import subprocess
import tempfile
import threading
import uuid

import httpx
import psutil

from checkout import stack_roots
from common.auth import mint_token
from common.settings import load_settings

CONNECTIONS = 256
COUPON = "WELCOME10"  # cart_svc/seed.py's listed coupon
SERVICES = ("cart_svc", "order_svc", "payment_svc", "enrollment_svc")
# (kind, requests per 100)
MIX = (("catalog", 30), ("get_cart", 25), ("estimate", 25), ("payment_status", 8), ("create_cart", 3),
       ("add_item", 5), ("coupon", 3), ("order", 1))
ADDS_PER_CART = 8  # a cart starts with 1 of its plan: 9 at most after its adds (MAX_QUANTITY is 10)

LUA = """
local data = %(data)s
local think_ms = %(think_ms)d
local weights = %(weights)s
local counters = {add = 0, order = 0}
local json_headers = {["Content-Type"] = "application/json"}

local function pick(list) return list[math.random(#list)] end

local builders = {
  catalog = function() return wrk.format("GET", "/api/v1/internships") end,
  get_cart = function() return wrk.format("GET", "/api/v1/cart/" .. pick(data.carts)[1]) end,
  estimate = function()
    local body = '{"cart_token":"' .. pick(data.carts)[1] .. '","billing":{"country":"IN","state":"MH"}}'
    return wrk.format("POST", "/api/v1/cart/estimate", json_headers, body)
  end,
  payment_status = function()
    local p = pick(data.payments)
    return wrk.format("GET", "/api/v1/payment/" .. p[1], {["Authorization"] = "Bearer " .. p[2]})
  end,
  create_cart = function()
    local body = '{"items":[{"plan_id":"' .. pick(data.plans) .. '","quantity":1}]}'
    return wrk.format("POST", "/api-proxy/api/cart", json_headers, body)
  end,
  add_item = function()
    counters.add = counters.add + 1
    local cart = data.carts[(counters.add - 1) %% #data.carts + 1]
    local body = '{"plan_id":"' .. cart[2] .. '","quantity":1}'
    return wrk.format("POST", "/api/v1/cart/" .. cart[1] .. "/items", json_headers, body)
  end,
  coupon = function()
    return wrk.format("POST", "/api/v1/cart/" .. pick(data.carts)[1] .. "/coupon", json_headers, '{"code":"%(coupon)s"}')
  end,
  order = function()
    counters.order = counters.order + 1
    local o = data.orders[counters.order]
    if o == nil then o = data.orders[#data.orders] end  -- ran out: a repeat (the same key: the stored answer)
    local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. o[2],
                     ["Idempotency-Key"] = o[3]}
    return wrk.format("POST", "/api/v1/order", headers, '{"cart_token":"' .. o[1] .. '"}')
  end,
}

local wheel = {}
for _, entry in ipairs(weights) do
  for _ = 1, entry[2] do wheel[#wheel + 1] = entry[1] end
end

request = function() return builders[wheel[math.random(#wheel)]]() end
-- uniform in [0, 2 x think]: the mean is the think time, and the connections, which all start at
-- once, drift apart instead of sending in bursts of CONNECTIONS every think time
delay = function() return math.random(0, 2 * think_ms) end

done = function(summary, latency, requests)
  io.write(string.format('{"requests": %%d, "seconds": %%f, "errors": %%d, "non2xx": %%d, "p50": %%f, "p95": %%f, "p99": %%f}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
"""


def lua_script(data: dict[str, object], think_ms: int) -> str:
    # JSON arrays become Lua tables once brackets are braces (the values are UUIDs, tokens, plan ids).
    table = "{" + ",".join(f"{key}={json.dumps(value).replace('[', '{').replace(']', '}')}"
                           for key, value in data.items()) + "}"
    weights = "{" + ",".join(f'{{"{kind}",{share}}}' for kind, share in MIX) + "}"
    return LUA % {"data": table, "think_ms": think_ms, "weights": weights, "coupon": COUPON}


async def prepare(url: str, carts: int, orders: int, payments: int) -> dict[str, object]:
    settings = load_settings()
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        catalog = (await client.get("/api/v1/internships")).raise_for_status().json()["internships"]
        plans = [plan["plan_id"] for internship in catalog for plan in internship["plans"]]

        async def cart(plan: str, token: str | None = None) -> str:
            headers = {"authorization": f"Bearer {token}"} if token else {}
            answer = await client.post("/api-proxy/api/cart", json={"items": [{"plan_id": plan, "quantity": 1}]},
                                       headers=headers)
            return str(answer.raise_for_status().json()["token"])

        async def in_batches(jobs: list, size: int = 16) -> list:
            results: list = []
            for start in range(0, len(jobs), size):
                results += await asyncio.gather(*jobs[start:start + size])
            return results

        guest = [plans[i % len(plans)] for i in range(carts)]
        cart_tokens = await in_batches([cart(plan) for plan in guest])
        users = [mint_token(settings, str(uuid.uuid4())) for _ in range(orders + payments)]
        owned = await in_batches([cart(plans[i % len(plans)], user) for i, user in enumerate(users)])

        async def order(cart_token: str, user: str) -> str:
            answer = await client.post("/api/v1/order", json={"cart_token": cart_token},
                                       headers={"authorization": f"Bearer {user}", "idempotency-key": str(uuid.uuid4())})
            return str(answer.raise_for_status().json()["payment"]["payment_token"])

        paying = users[:payments]
        payment_tokens = await in_batches([order(c, u) for c, u in zip(owned[:payments], paying, strict=True)])
    return {
        "plans": plans,
        "carts": [[token, plan] for token, plan in zip(cart_tokens, guest, strict=True)],
        "orders": [[c, u, str(uuid.uuid4())] for c, u in zip(owned[payments:], users[payments:], strict=True)],
        "payments": [[token, user] for token, user in zip(payment_tokens, paying, strict=True)],
    }


class RssWatch:
    """The largest RSS of each service process (SPLIT_WORKERS' `<service>.workers` too), sampled every
    half second while the load runs."""

    def __init__(self) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in sorted(stack_roots().items())
                          if name.split(".", 1)[0] in SERVICES}
        self.peak = dict.fromkeys(self.processes, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for name, process in self.processes.items():
                self.peak[name] = max(self.peak[name], process.memory_info().rss)

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def run_wrk(url: str, data: dict[str, object], rate: int, seconds: int) -> tuple[dict, float, dict[str, int]]:
    think_ms = round(CONNECTIONS * 1000 / rate)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(data, think_ms))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        with RssWatch() as rss:
            done = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s",
                                   script.name, url], capture_output=True, text=True, check=False)
    finally:
        pathlib.Path(script.name).unlink()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"wrk failed: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(done.stdout.strip().splitlines()[-1]), cpu, rss.peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--rates", default="1000,1500,2000,2500", help="requests/s offered, one wrk run each")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--carts", type=int, default=3000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark needs wrk: apt-get install wrk")
    rates = [int(rate) for rate in args.rates.split(",")]
    order_share = dict(MIX)["order"] / 100
    orders = int(sum(rates) * args.seconds * order_share * 1.2) + 50
    adds = sum(rates) * args.seconds * dict(MIX)["add_item"] / 100
    if adds > args.carts * ADDS_PER_CART:
        raise SystemExit(f"--carts {args.carts} is too few for {adds:.0f} adds: at least {adds / ADDS_PER_CART:.0f}")
    data = asyncio.run(prepare(args.url, args.carts, orders, payments=50))
    print(f"wrk, 1 thread, {CONNECTIONS} connections each waiting a think time before its next request; "
          f"{args.seconds} s per rate; {args.carts} carts, {orders} carts to order; mix per 100: "
          + ", ".join(f"{kind} {share}" for kind, share in MIX))
    print(f"{'offered/s':>9} {'achieved/s':>10} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>7} "
          f"{'wrk CPU':>7}  RSS MB " + " ".join(RssWatch().processes))
    for rate in rates:
        result, cpu, peak = run_wrk(args.url, data, rate, args.seconds)
        data["orders"] = data["orders"][int(rate * args.seconds * order_share * 1.2):]  # type: ignore[index]
        achieved = result["requests"] / result["seconds"]
        print(f"{rate:9} {achieved:10.0f} {result['p50']:7.1f} {result['p95']:7.1f} {result['p99']:7.1f} "
              f"{result['errors'] + result['non2xx']:7} {cpu / result['seconds']:7.0%}  "
              + " ".join(f"{value / 2**20:.0f}" for value in peak.values()), flush=True)


if __name__ == "__main__":
    main()
