"""How the edge rides out a dead or failing replica: outlier detection and a retry budget on each
service cluster, and retries that may repeat a request only where repeating it is safe.

Every request may be retried when it never reached a service (connect failure, refused stream).
A request that may have reached one (reset, UNAVAILABLE) is retried, on another host, only when it
is idempotent: a read (an HTTP GET rule), or one carrying a key the service deduplicates on (the
order's Idempotency-Key, a gateway's webhook event id or signed body). The cluster's retry budget
caps retries at a share of the requests in flight, so a sick service is not hit twice as hard.
"""

from __future__ import annotations

from edge import descriptors

# headers naming a request the service deduplicates (docs/API.md: Idempotency-Key; webhooks)
IDEMPOTENCY_HEADERS = ("idempotency-key", "x-razorpay-event-id", "stripe-signature")
NEVER_ARRIVED = "connect-failure,refused-stream"
MAY_HAVE_ARRIVED = "connect-failure,refused-stream,reset,unavailable"
RETRIES = 2
RETRY_BUDGET_PERCENT = 20.0
MIN_RETRY_CONCURRENCY = 3

_PREVIOUS_HOSTS = {
    "name": "envoy.retry_host_predicates.previous_hosts",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"},
}


def reads(rules: list[descriptors.HttpRule]) -> frozenset[str]:
    """The gRPC paths (`/pkg.Service/Method`) of the methods bound to GET."""
    return frozenset(f"/{rule.service}/{rule.method}" for rule in rules if rule.verb == "GET")


def retry_policy(*, idempotent: bool) -> dict:
    policy: dict = {"retry_on": MAY_HAVE_ARRIVED if idempotent else NEVER_ARRIVED, "num_retries": RETRIES,
                    "retry_back_off": {"base_interval": "0.05s", "max_interval": "0.5s"}}
    if idempotent:
        # a retry goes to another replica when there is one
        policy["retry_host_predicate"] = [_PREVIOUS_HOSTS]
        policy["host_selection_retry_max_attempts"] = 3
    return policy


def service_routes(service: str, cluster: str, timeout: str, read_paths: frozenset[str]) -> list[dict]:
    """The routes of one service's transcoded paths: its reads, its keyed requests, the rest."""
    def route(name: str, match: dict, idempotent: bool) -> dict:
        return {"name": name, "match": match,
                "route": {"cluster": cluster, "timeout": timeout, "retry_policy": retry_policy(idempotent=idempotent)}}

    mine = sorted(path for path in read_paths if path.startswith(f"/{service}/"))
    return [
        *(route(f"{service}.{path.rsplit('/', 1)[1]}", {"path": path}, True) for path in mine),
        *(route(f"{service}.keyed.{header}", {"prefix": f"/{service}/",
                                             "headers": [{"name": header, "present_match": True}]}, True)
          for header in IDEMPOTENCY_HEADERS),
        route(service, {"prefix": f"/{service}/"}, False),
    ]


def webhook_routes(paths: tuple[str, ...], cluster: str, timeout: str) -> list[dict]:
    """The gateways' webhooks to a cluster of their own; each carries its event id, so retried like a keyed call."""
    return [{"name": f"webhooks.{path.rsplit('/', 1)[1]}", "match": {"path": path},
             "route": {"cluster": cluster, "timeout": timeout, "retry_policy": retry_policy(idempotent=True)}}
            for path in paths]


def outlier_detection() -> dict:
    """A replica that keeps failing (or cannot be reached) is ejected for a while; never all of them."""
    return {
        "consecutive_5xx": 5,
        "consecutive_gateway_failure": 3,
        "split_external_local_origin_errors": True,
        "consecutive_local_origin_failure": 2,
        "interval": "1s",
        "base_ejection_time": "5s",
        "max_ejection_percent": 50,
    }


def circuit_breakers() -> dict:
    return {"thresholds": [{"retry_budget": {"budget_percent": {"value": RETRY_BUDGET_PERCENT},
                                             "min_retry_concurrency": MIN_RETRY_CONCURRENCY}}]}
