"""Read latency through the edge against a no-op RPC through the same Envoy in the same run, with
cart reads and estimates spread over many carts and their Redis hits and misses reported apart.

Needs a running stack started with a rate limit above the load (`EDGE_RATE_LIMIT_RPS=100000
make run`) and Debian's `wrk` (apt-get install wrk): a Python load generator saturates a core
long before the stack does. A benchmark, not a test.

    .venv/bin/python bench/rest_latency.py [--url http://127.0.0.1:8080] [--seconds 10] [--connections 16] [--carts 2000]

It first creates `--carts` guest carts of one or two catalog plans each, then measures, one route
after another with wrk (one thread, `--connections` connections, every request checked 2xx):

- no-op `GET /api/v1/ping` and the catalog `GET /api/v1/internships`: `--seconds` each;
- `GET /api/v1/cart/{token}`, misses: every cart's Redis entry (cart:{token}) is deleted, then
  each cart is read exactly once, so every read goes to PostgreSQL (and refills the entry);
- the same, hits: `--seconds` of reads of carts picked at random, all cached by the pass before;
- `POST /api/v1/cart/estimate` (each cart with one of four billing addresses), misses: the estimates'
  entries (pricing:{token}:…) are deleted and each cart is estimated once (its cart entry cached:
  the first estimate of a cart someone just looked at);
- the same, hits: `--seconds` of estimates of carts picked at random.

Prints, per run, requests/s, p50/p95/p99, requests/s as a share of the no-op's and p50 as a
multiple of the no-op's, and Redis's own keyspace hits and misses per request over the run, which
shows that the hit runs hit and the miss runs miss. wrk shares the machine's cores with the stack,
so absolute figures are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import pathlib
import random
import shutil
import signal
import subprocess
import tempfile

import httpx
import redis

from common.settings import load_settings

BILLING = [("IN", "MH"), ("IN", "KA"), ("IN", "DL"), ("US", "CA")]
ONCE_DONE = "every target answered once"
ONCE_CAP_SECONDS = 600

# targets: {path, body} pairs; `once` sends each exactly once (delay() parks a connection once all
# are handed out) and stops at the last answer; otherwise targets are picked at random.
LUA = """
local targets = %(targets)s
local once = %(once)s
local handed, sent, answered = 0, 0, 0
wrk.method = %(method)s
wrk.headers["Content-Type"] = "application/json"

request = function()
  local target
  if once then
    -- wrk also calls request() once at start to check it, without sending: no target was handed out
    if sent < handed then sent = sent + 1 end
    target = targets[math.max(sent, 1)]
  else
    target = targets[math.random(#targets)]
  end
  return wrk.format(nil, target[1], nil, target[2])
end

if once then
  delay = function()
    handed = handed + 1
    if handed <= #targets then return 0 end
    return 3600000
  end
  response = function()
    answered = answered + 1
    if answered == #targets then
      wrk.thread:stop()
      io.write("%(done_marker)s\\n")
      io.flush()
    end
  end
end

done = function(summary, latency, requests)
  io.write(string.format('{"requests": %%d, "seconds": %%f, "errors": %%d, "non2xx": %%d, "p50": %%f, "p95": %%f, "p99": %%f}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
"""


def lua_script(method: str, targets: list[tuple[str, str]], once: bool) -> str:
    # A JSON string of ASCII text is also a Lua string literal.
    table = "{" + ",".join(f"{{{json.dumps(path)},{json.dumps(body)}}}" for path, body in targets) + "}"
    return LUA % {"targets": table, "once": "true" if once else "false", "method": json.dumps(method),
                  "done_marker": ONCE_DONE}


def run_wrk(url: str, method: str, targets: list[tuple[str, str]], *, seconds: int | None, connections: int) -> dict:
    """`seconds` of random picks, or (None) every target once; wrk's JSON summary."""
    once = seconds is None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(method, targets, once))
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{ONCE_CAP_SECONDS if once else seconds}s", "-s", script.name, url]
    try:
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as wrk:
            assert wrk.stdout is not None
            if once:
                # wrk otherwise sleeps out its -d: SIGINT makes it stop and report at once.
                for line in wrk.stdout:
                    if line.strip() == ONCE_DONE:
                        while wrk.poll() is None:
                            wrk.send_signal(signal.SIGINT)
                            try:
                                wrk.wait(0.5)
                            except subprocess.TimeoutExpired:
                                pass
                        break
            out, err = wrk.communicate()
            if wrk.returncode:
                raise SystemExit(f"wrk failed: {err.strip()}")
    finally:
        pathlib.Path(script.name).unlink()
    result = json.loads(out.strip().splitlines()[-1])
    if result["non2xx"] or result["errors"]:
        raise SystemExit(f"{method} {url}: {result['non2xx']} non-2xx, {result['errors']} errors — is the rate limit raised?")
    if once and result["requests"] != len(targets):
        raise SystemExit(f"{method} {url}: {result['requests']} answers for {len(targets)} targets")
    return result


async def create_carts(url: str, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        catalog = (await client.get("/api/v1/internships")).raise_for_status().json()["internships"]
        plans = [[plan["plan_id"] for plan in internship["plans"]] for internship in catalog]
        picker = random.Random(9)
        tokens: list[str] = []

        async def create() -> None:
            while len(tokens) < count:
                items = [{"plan_id": picker.choice(p), "quantity": 1} for p in picker.sample(plans, picker.choice((1, 2)))]
                tokens.append((await client.post("/api-proxy/api/cart", json={"items": items})).raise_for_status().json()["token"])

        await asyncio.gather(*(create() for _ in range(16)))
    return tokens[:count]


def redis_lookups(client: redis.Redis) -> tuple[int, int]:
    stats = client.info("stats")
    return stats["keyspace_hits"], stats["keyspace_misses"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--carts", type=int, default=2000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark needs wrk: apt-get install wrk")
    cache = redis.Redis.from_url(load_settings().redis_url)
    tokens = asyncio.run(create_carts(args.url, args.carts))
    reads = [(f"/api/v1/cart/{token}", "") for token in tokens]
    estimates = [("/api/v1/cart/estimate", json.dumps({"cart_token": token, "billing": {"country": country, "state": state}}))
                 for token, (country, state) in zip(tokens, itertools.cycle(BILLING))]

    # Key names as cart_svc/cart_cache.py writes them (not imported: it needs gen/'s `checkout`
    # package, which bench/checkout.py shadows here).
    def forget_carts() -> None:
        cache.delete(*(f"cart:{token}" for token in tokens))

    def forget_estimates() -> None:
        ours = {token.encode() for token in tokens}  # pricing:{token}:{country}:{state}:{currency}
        stale = [key for key in cache.scan_iter(match="pricing:*", count=1000) if key.split(b":")[1] in ours]
        if stale:
            cache.delete(*stale)

    seconds = args.seconds
    runs = [  # name, method, targets, seconds (None: each target once), what to delete from Redis first
        ("no-op GET /api/v1/ping", "GET", [("/api/v1/ping", "")], seconds, None),
        ("GET /api/v1/internships", "GET", [("/api/v1/internships", "")], seconds, None),
        ("GET /api/v1/cart/{token}, miss", "GET", reads, None, forget_carts),
        ("GET /api/v1/cart/{token}, hit", "GET", reads, seconds, None),
        ("POST /api/v1/cart/estimate, miss", "POST", estimates, None, forget_estimates),
        ("POST /api/v1/cart/estimate, hit", "POST", estimates, seconds, None),
    ]
    run_wrk(args.url, "GET", [("/api/v1/ping", "")], seconds=2, connections=args.connections)  # warm-up
    results: dict[str, tuple[dict, float, float]] = {}
    for name, method, targets, duration, forget in runs:
        if forget:
            forget()
        hits, misses = redis_lookups(cache)
        result = run_wrk(args.url, method, targets, seconds=duration, connections=args.connections)
        hits_after, misses_after = redis_lookups(cache)
        results[name] = (result, (hits_after - hits) / result["requests"], (misses_after - misses) / result["requests"])

    print(f"wrk, 1 thread, {args.connections} connections, {args.url}; {len(tokens)} carts; "
          f"runs of {seconds} s, or (miss) each cart once")
    print(f"{'run':33} {'requests':>8} {'req/s':>7} {'% no-op':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'p50 x':>6} {'redis hits/req':>14} {'misses/req':>10}")
    base = results[runs[0][0]][0]
    for name, (r, hits, misses) in results.items():
        rate = r["requests"] / r["seconds"]
        print(f"{name:33} {r['requests']:8} {rate:7.0f} {rate / (base['requests'] / base['seconds']):7.0%} {r['p50']:7.2f} "
              f"{r['p95']:7.2f} {r['p99']:7.2f} {r['p50'] / base['p50']:6.2f} {hits:14.2f} {misses:10.2f}")


if __name__ == "__main__":
    main()
