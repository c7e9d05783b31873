"""The Grafana dashboards in deploy/grafana/dashboards/, written from the panels listed here:
`python -m tools.grafana_dashboards` rewrites them (tests/unit/deploy/test_dashboards.py fails
when a committed file is stale, and when a panel queries a metric no service or Envoy exports).

Every panel reads the provisioned Prometheus datasource (uid `prometheus`,
deploy/grafana/provisioning/). Metric names: docs/OPERATIONS.md."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
EDGE = 'envoy_http_conn_manager_prefix="edge"'
SERVICES = 'envoy_cluster_name=~"cart|order|payment|enrollment"'


@dataclasses.dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclasses.dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"  # or bargauge (instant: one bar per query over the dashboard's range), stat
    description: str = ""
    width: int = 12


@dataclasses.dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]


def q(expr: str, legend: str = "") -> Query:
    return Query(" ".join(expr.split()), legend)


def p95(bucket: str, by: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile(0.95, sum by ({group}) (rate({bucket}[$__rate_interval])))"


def published(subject: str) -> str:
    return f'sum(increase(checkout_events_published_total{{subject="{subject}"}}[$__range]))'


OVERVIEW = Dashboard(
    "checkout-overview", "Checkout: funnel and health",
    "Carts to enrollments, and the PRD's headline numbers (alerts: deploy/prometheus/alerts.yml).",
    (
        Panel("Checkout funnel (over the time range)", (
            q(published("checkout.cart.created"), "carts created"),
            q(published("checkout.order.created"), "orders placed"),
            q('sum(increase(checkout_payment_outcomes_total{outcome="captured"}[$__range]))', "payments captured"),
            q(published("checkout.order.paid"), "orders paid"),
            q(published("checkout.enrollment.created"), "orders enrolled"),
        ), kind="bargauge", width=24,
            description="Events published over the dashboard's range: each step once per cart, order or payment."),
        Panel("Funnel per minute", (
            q('sum by (subject) (rate(checkout_events_published_total{subject=~"checkout.cart.created|checkout.order.created'
              '|checkout.order.paid|checkout.enrollment.created"}[$__rate_interval])) * 60', "{{subject}}"),
        ), unit="short"),
        Panel("Payment success rate (alert < 95%)", (
            q("checkout:payment_success_ratio:rate10m", "captured / (captured + failed)"),
        ), unit="percentunit"),
        Panel("API p95 at the edge (alert > 500 ms)", (
            q(p95(f"envoy_http_downstream_rq_time_bucket{{{EDGE}}}"), "p95"),
        ), unit="ms"),
        Panel("Edge answers by class", (
            q(f"sum by (envoy_response_code_class) (rate(envoy_http_downstream_rq_xx{{{EDGE}}}[$__rate_interval]))",
              "{{envoy_response_code_class}}xx"),
        ), unit="reqps"),
        Panel("5xx by service (as Envoy got them)", (
            q(f'sum by (envoy_cluster_name) (rate(envoy_cluster_upstream_rq_xx{{{SERVICES}, envoy_response_code_class="5"}}'
              '[$__rate_interval]))', "{{envoy_cluster_name}}"),
        ), unit="reqps"),
        Panel("Enrollment lag p95 (alert > 60 s)", (
            q(p95("checkout_enrollment_lag_seconds_bucket"), "paid → enrolled"),
        ), unit="s"),
        Panel("Services healthy at the edge", (
            q(f"max by (envoy_cluster_name) (envoy_cluster_membership_healthy{{{SERVICES}}})", "{{envoy_cluster_name}}"),
        )),
    ),
)

GATEWAYS = Dashboard(
    "checkout-gateways", "Checkout: payment gateways",
    "Razorpay and Stripe: outcomes, call latency, breakers, webhooks, refunds.",
    (
        Panel("Payment success by gateway", (
            q('sum by (gateway) (rate(checkout_payment_outcomes_total{outcome="captured"}[$__rate_interval])) '
              '/ sum by (gateway) (rate(checkout_payment_outcomes_total{outcome=~"captured|failed"}[$__rate_interval]))',
              "{{gateway}}"),
        ), unit="percentunit"),
        Panel("Payment outcomes by gateway", (
            q("sum by (gateway, outcome) (rate(checkout_payment_outcomes_total[$__rate_interval])) * 60",
              "{{gateway}} {{outcome}}"),
        ), description="Per minute: captured, failed, expired (a session left unpaid)."),
        Panel("Gateway call latency p95 by gateway and operation", (
            q(p95("checkout_gateway_call_seconds_bucket", "gateway, operation"), "{{gateway}} {{operation}}"),
        ), unit="s"),
        Panel("Gateway calls by outcome", (
            q("sum by (gateway, outcome) (rate(checkout_gateway_calls_total[$__rate_interval]))", "{{gateway}} {{outcome}}"),
        ), unit="reqps"),
        Panel("Circuit breakers (1 = open or half-open)", (
            q("max by (gateway) (checkout_gateway_breaker_open)", "{{gateway}}"),
        )),
        Panel("Session fallbacks", (
            q("sum by (preferred, used) (rate(checkout_payment_session_fallbacks_total[$__rate_interval])) * 60",
              "{{preferred}} → {{used}}"),
        ), description="Per minute: sessions opened at another gateway than the preferred one."),
        Panel("Webhooks by verdict", (
            q("sum by (gateway, verdict) (rate(checkout_webhooks_total[$__rate_interval]))", "{{gateway}} {{verdict}}"),
            q("sum by (gateway) (rate(checkout_webhook_signature_failures_total[$__rate_interval]))",
              "{{gateway}} bad signature"),
        ), unit="reqps"),
        Panel("Webhook handling p95", (
            q(p95("checkout_webhook_seconds_bucket", "gateway"), "{{gateway}}"),
        ), unit="s"),
        Panel("Refund steps by gateway", (
            q("sum by (gateway, step) (increase(checkout_refunds_total[$__rate_interval]))", "{{gateway}} {{step}}"),
        ), description="Requested, processed, failed, unconfirmed… (payment_svc/README.md \"Refunds\")."),
        Panel("Reconciler: sessions by result", (
            q("sum by (gateway, result) (rate(checkout_reconcile_sessions_total[$__rate_interval])) * 60",
              "{{gateway}} {{result}}"),
        ), width=24),
    ),
)

PLATFORM = Dashboard(
    "checkout-platform", "Checkout: latency, events, cache, database",
    "REST latency by route, outbox and consumer lag, cache hit ratio, connection pools.",
    (
        Panel("REST latency p95 by route (the route's RPC)", (
            q(p95("checkout_rpc_duration_seconds_bucket", "method"), "{{method}}"),
        ), unit="s", width=24, description="Each REST route is one RPC: the service's own handling time."),
        Panel("Requests by route", (
            q("sum by (method) (rate(checkout_rpc_handled_total[$__rate_interval]))", "{{method}}"),
        ), unit="reqps"),
        Panel("Errors by route and checkout code", (
            q('sum by (method, code) (rate(checkout_rpc_handled_total{code!="0"}[$__rate_interval]))', "{{method}} {{code}}"),
        ), unit="reqps"),
        Panel("Edge → service p95 by service", (
            q(p95(f"envoy_cluster_upstream_rq_time_bucket{{{SERVICES}}}", "envoy_cluster_name"), "{{envoy_cluster_name}}"),
        ), unit="ms"),
        Panel("Outbox lag by schema (alert > 30 s)", (
            q("max by (schema) (checkout_outbox_lag_seconds)", "{{schema}}"),
        ), unit="s"),
        Panel("Outbox: insert → published p95", (
            q(p95("checkout_outbox_publish_lag_seconds_bucket"), "p95"),
        ), unit="s"),
        Panel("Consumer lag p95 by consumer", (
            q(p95("checkout_event_consumer_lag_seconds_bucket", "consumer"), "{{consumer}}"),
        ), unit="s"),
        Panel("Consumer backlog", (
            q("max by (consumer) (checkout_event_consumer_pending)", "{{consumer}}"),
        ), description="Messages not yet delivered, as of each consumer's last delivery."),
        Panel("Deliveries by outcome", (
            q("sum by (consumer, outcome) (rate(checkout_events_consumed_total[$__rate_interval]))", "{{consumer}} {{outcome}}"),
        ), unit="reqps"),
        Panel("Dead letters parked", (
            q("max by (schema) (checkout_dead_letters_parked)", "{{schema}}"),
        )),
        Panel("Retention: rows pruned per hour", (
            q("sum by (schema, what) (increase(checkout_pruned_rows_total[1h]))", "{{schema}} {{what}}"),
        )),
        Panel("Outbox relay leaders", (
            q("sum by (schema) (checkout_outbox_relay_leader)", "{{schema}}"),
        ), description="Processes leading each schema's relay: 1 is right, 0 means no relay publishes."),
        Panel("Cache hit ratio by entry kind (alert: misses > 20%)", (
            q('sum by (cache) (rate(checkout_cache_lookups_total{result="hit"}[$__rate_interval])) '
              '/ sum by (cache) (rate(checkout_cache_lookups_total[$__rate_interval]))', "{{cache}}"),
            q('sum(rate(checkout_cache_lookups_total{result="hit", cache!="catalog"}[$__rate_interval])) '
              '/ sum(rate(checkout_cache_lookups_total{cache!="catalog"}[$__rate_interval]))', "Redis (alerted)"),
        ), unit="percentunit"),
        Panel("Redis errors", (
            q("sum by (operation) (rate(checkout_cache_errors_total[$__rate_interval]))", "{{operation}}"),
        ), unit="reqps"),
        Panel("Connection pool use by service (alert ≥ 90%)", (
            q("sum by (service) (checkout_db_pool_checked_out) / sum by (service) (checkout_db_pool_max)", "{{service}}"),
        ), unit="percentunit"),
        Panel("Connections in use, pool size, overflow and limit", (
            q("sum by (service) (checkout_db_pool_checked_out)", "{{service}} in use"),
            q("sum by (service) (checkout_db_pool_size)", "{{service}} size"),
            q("sum by (service) (checkout_db_pool_overflow)", "{{service}} overflow"),
            q("sum by (service) (checkout_db_pool_max)", "{{service}} limit"),
        )),
    ),
)

ALL = (OVERVIEW, GATEWAYS, PLATFORM)


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict:
    instant = panel.kind == "bargauge"
    targets = [{"refId": chr(ord("A") + n), "datasource": DATASOURCE, "expr": query.expr, "legendFormat": query.legend,
                "instant": instant, "range": not instant} for n, query in enumerate(panel.queries)]
    result: dict = {
        "id": panel_id, "type": panel.kind, "title": panel.title, "description": panel.description,
        "datasource": DATASOURCE, "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y}, "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
    }
    if instant:
        result["options"] = {"orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True,
                             "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    else:
        result["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                             "tooltip": {"mode": "multi", "sort": "desc"}}
    return result


def render(dashboard: Dashboard) -> str:
    panels, x, y = [], 0, 0
    for panel_id, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > 24:
            x, y = 0, y + 8
        panels.append(_panel(panel, panel_id, x, y))
        x += panel.width
    document = {
        "uid": dashboard.uid, "title": dashboard.title, "description": dashboard.description, "tags": ["checkout"],
        "timezone": "utc", "schemaVersion": 39, "version": 1, "editable": True, "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
        "annotations": {"list": []}, "templating": {"list": []}, "panels": panels,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def files() -> dict[pathlib.Path, str]:
    return {DASHBOARDS / f"{dashboard.uid}.json": render(dashboard) for dashboard in ALL}


def main() -> int:
    DASHBOARDS.mkdir(parents=True, exist_ok=True)
    for path, text in files().items():
        path.write_text(text)
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
