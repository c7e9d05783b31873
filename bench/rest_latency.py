"""Latency of cart reads and estimates through the edge, against a no-op RPC through the same
Envoy in the same run (issue 3). Needs a running stack started with a rate limit above the load
(`EDGE_RATE_LIMIT_RPS=100000 make run`) and Debian's `wrk` (apt-get install wrk): a Python load
generator saturates a core long before the stack does. A benchmark, not a test.

    .venv/bin/python bench/rest_latency.py [--url http://127.0.0.1:8080] [--seconds 10] [--connections 16]

Prints, per route, requests/s, p50/p95/p99 and each route's p50 and p95 as a ratio of the no-op's.
wrk shares the machine's two cores with the stack, so absolute figures are pessimistic.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import tempfile

import httpx

PLAN = "7a1e0000-0000-4000-8000-000000000103"

LUA = """
wrk.method = %(method)s
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %%d, "seconds": %%f, "errors": %%d, "non2xx": %%d, "p50": %%f, "p95": %%f, "p99": %%f}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
"""


def run_wrk(url: str, method: str, body: dict | None, seconds: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % {"method": json.dumps(method), "body": json.dumps(json.dumps(body) if body else "")})
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
                             check=True, capture_output=True, text=True).stdout
    finally:
        pathlib.Path(script.name).unlink()
    result = json.loads(out.strip().splitlines()[-1])
    if result["non2xx"] or result["errors"]:
        raise SystemExit(f"{method} {url}: {result['non2xx']} non-2xx, {result['errors']} errors — is the rate limit raised?")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark needs wrk: apt-get install wrk")
    cart = httpx.post(f"{args.url}/api-proxy/api/cart", json={"items": [{"plan_id": PLAN, "quantity": 1}]}).json()
    routes = [
        ("no-op GET /api/v1/ping", "GET", "/api/v1/ping", None),
        ("GET /api/v1/cart/{token}", "GET", f"/api/v1/cart/{cart['token']}", None),
        ("POST /api/v1/cart/estimate", "POST", "/api/v1/cart/estimate",
         {"cart_token": cart["token"], "billing": {"country": "IN", "state": "MH"}}),
    ]
    run_wrk(args.url + "/api/v1/ping", "GET", None, 2, args.connections)  # warm-up
    results = {name: run_wrk(args.url + path, method, body, args.seconds, args.connections) for name, method, path, body in routes}
    base = results[routes[0][0]]
    print(f"wrk, {args.connections} connections, {args.seconds} s per route, {args.url}")
    print(f"{'route':30} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'p50 x':>6} {'p95 x':>6}")
    for name, r in results.items():
        print(f"{name:30} {r['requests'] / r['seconds']:7.0f} {r['p50']:7.2f} {r['p95']:7.2f} {r['p99']:7.2f} "
              f"{r['p50'] / base['p50']:6.2f} {r['p95'] / base['p95']:6.2f}")


if __name__ == "__main__":
    main()
