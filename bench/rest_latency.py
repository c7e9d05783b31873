"""Latency of cart reads and estimates through the edge, against a no-op RPC through the same
Envoy in the same run (issue 3). Needs a running stack (`make run`); it is a benchmark, not a test.

    .venv/bin/python bench/rest_latency.py [--url http://127.0.0.1:8080] [--requests 2000] [--concurrency 16]

Prints p50/p95/p99 per route, requests/s, and each route's p50 and p95 as a ratio of the no-op's.
The load generator shares the machine's cores with the stack, so absolute figures are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

PLAN = "7a1e0000-0000-4000-8000-000000000103"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(client: httpx.AsyncClient, method: str, path: str, body: dict | None, total: int, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            response = await client.request(method, path, json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{method} {path}: {response.status_code} {response.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, total / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=args.url, limits=limits, timeout=10) as client:
        cart = (await client.post("/api-proxy/api/cart", json={"items": [{"plan_id": PLAN, "quantity": 1}]})).json()
        routes = [
            ("no-op GET /api/v1/ping", "GET", "/api/v1/ping", None),
            ("GET /api/v1/cart/{token}", "GET", f"/api/v1/cart/{cart['token']}", None),
            ("POST /api/v1/cart/estimate", "POST", "/api/v1/cart/estimate",
             {"cart_token": cart["token"], "billing": {"country": "IN", "state": "MH"}}),
        ]
        await measure(client, "GET", "/api/v1/ping", None, 200, args.concurrency)  # warm up connections
        results = {}
        for name, method, path, body in routes:
            results[name] = await measure(client, method, path, body, args.requests, args.concurrency)
    baseline = results[routes[0][0]][0]
    print(f"{args.requests} requests per route, concurrency {args.concurrency}, {args.url}")
    print(f"{'route':32} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} {'p50 x':>6} {'p95 x':>6}")
    for name, (latencies, rate) in results.items():
        p50, p95, p99 = (percentile(latencies, f) for f in (0.50, 0.95, 0.99))
        print(f"{name:32} {p50:8.2f} {p95:8.2f} {p99:8.2f} {rate:8.0f} "
              f"{p50 / statistics.median(baseline):6.2f} {p95 / percentile(baseline, 0.95):6.2f}")


if __name__ == "__main__":
    asyncio.run(main())
