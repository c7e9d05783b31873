"""The edge over replicated services (`make run-ha`): every replica an endpoint of its cluster,
health-checked, ejected when it keeps failing, and retried only where a retry is safe."""

from __future__ import annotations

import subprocess

import pytest

from common.settings import load_settings
from edge import config, resilience
from edge.__main__ import envoy_binary
from edge.settings import from_env

pytestmark = pytest.mark.timeout(120)

SERVICES = ("cart", "order", "payment", "enrollment")


def _replicated(**env: str):
    return from_env(load_settings({"GRPC_PLAINTEXT": "1", "SERVICE_REPLICAS": "2", "REPLICA_PORT_STEP": "100",
                                   "CART_GRPC_PORT": "19010", "CART_METRICS_PORT": "19020", **env}))


def _clusters(boot: dict) -> dict[str, dict]:
    return {cluster["name"]: cluster for cluster in boot["static_resources"]["clusters"]}


def _ports(cluster: dict) -> list[int]:
    return [endpoint["endpoint"]["address"]["socket_address"]["port_value"]
            for group in cluster["load_assignment"]["endpoints"] for endpoint in group["lb_endpoints"]]


def _routes(boot: dict) -> dict[str, dict]:
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    main = next(host for host in hcm["route_config"]["virtual_hosts"] if host["name"] == "checkout")
    return {route["name"]: route for route in main["routes"]}


def test_each_replica_is_a_health_checked_endpoint_of_its_cluster_with_outlier_detection_and_a_retry_budget():
    clusters = _clusters(config.bootstrap(_replicated()))
    assert _ports(clusters["cart"]) == [19010, 19110]
    assert _ports(clusters["cart_ops"]) == [19020, 19120]  # /readyz asks either replica
    for name in SERVICES:
        cluster = clusters[name]
        assert len(_ports(cluster)) == 2
        assert cluster["health_checks"][0]["grpc_health_check"] == {"service_name": ""}
        assert cluster["outlier_detection"]["max_ejection_percent"] == 50  # never every replica
        budget = cluster["circuit_breakers"]["thresholds"][0]["retry_budget"]
        assert budget["budget_percent"]["value"] == resilience.RETRY_BUDGET_PERCENT


def test_one_replica_is_one_endpoint():
    clusters = _clusters(config.bootstrap(from_env(load_settings({"GRPC_PLAINTEXT": "1"}))))
    assert _ports(clusters["cart"]) == [50051]


def test_reads_and_keyed_requests_retry_on_another_replica_and_the_rest_only_when_never_sent():
    routes = _routes(config.bootstrap(_replicated()))
    read = routes["checkout.v1.CartService.GetCart"]
    assert read["match"] == {"path": "/checkout.v1.CartService/GetCart"}
    assert "reset" in read["route"]["retry_policy"]["retry_on"] and "unavailable" in read["route"]["retry_policy"]["retry_on"]
    assert read["route"]["retry_policy"]["retry_host_predicate"][0]["name"] == "envoy.retry_host_predicates.previous_hosts"
    keyed = routes["checkout.v1.OrderService.keyed.idempotency-key"]
    assert keyed["match"]["headers"] == [{"name": "idempotency-key", "present_match": True}]
    assert keyed["route"]["retry_policy"]["retry_on"] == resilience.MAY_HAVE_ARRIVED
    assert "checkout.v1.PaymentService.keyed.x-razorpay-event-id" in routes
    plain = routes["checkout.v1.OrderService"]
    assert plain["route"]["retry_policy"]["retry_on"] == resilience.NEVER_ARRIVED
    assert "retry_host_predicate" not in plain["route"]["retry_policy"]
    # no POST is taken for a read: every read route is a GET rule's method
    names = list(routes)
    assert names.index("checkout.v1.OrderService.keyed.idempotency-key") < names.index("checkout.v1.OrderService")
    assert not [name for name in routes if name.endswith(".CreateOrder") or name.endswith(".AddItem")]


def test_the_replicated_config_passes_envoy_validate(tmp_path):
    path = tmp_path / "envoy.yaml"
    path.write_text(config.render(_replicated()))
    result = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart",
                             "--log-level", "error"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_order_svc_reaches_every_replica_of_cart_and_payment():
    settings = load_settings({"SERVICE_REPLICAS": "2", "REPLICA_PORT_STEP": "100", "CART_GRPC_PORT": "19010"})
    assert settings.cart_grpc_address == "ipv4:127.0.0.1:19010,127.0.0.1:19110"
    assert load_settings({}).cart_grpc_address == "127.0.0.1:50051"


def _webhook_methods() -> list[str]:
    """The gRPC paths of the RPCs whose REST path is under /api/v1/webhooks/ (the descriptor set)."""
    from edge import descriptors
    from edge.settings import DESCRIPTOR_PATH

    return sorted(f"/{rule.service}/{rule.method}" for rule in descriptors.http_rules(descriptors.load(DESCRIPTOR_PATH))
                  if rule.template.startswith("/api/v1/webhooks/"))


def test_under_split_workers_the_gateways_webhooks_go_to_payment_svcs_workers_and_nothing_else_does():
    from edge.settings import WEBHOOK_PATHS

    assert sorted(WEBHOOK_PATHS) == _webhook_methods()
    boot = config.bootstrap(_replicated(SPLIT_WORKERS="1", PAYMENT_GRPC_PORT="19030"))
    clusters = _clusters(boot)
    assert _ports(clusters["payment_webhooks"]) == [19230, 19330]  # the workers twins of both replicas
    assert _ports(clusters["payment"]) == [19030, 19130]
    routes = _routes(boot)
    names = list(routes)
    for path in WEBHOOK_PATHS:
        route = routes[f"webhooks.{path.rsplit('/', 1)[1]}"]
        assert route["match"] == {"path": path} and route["route"]["cluster"] == "payment_webhooks"
        assert route["route"]["retry_policy"]["retry_on"] == resilience.MAY_HAVE_ARRIVED  # each carries its event id
        assert names.index(route["name"]) < names.index("checkout.v1.PaymentService.keyed.x-razorpay-event-id")
    assert [name for name, route in routes.items() if route.get("route", {}).get("cluster") == "payment_webhooks"] == [
        f"webhooks.{path.rsplit('/', 1)[1]}" for path in WEBHOOK_PATHS]
    assert "payment_webhooks" not in _clusters(config.bootstrap(_replicated()))  # without SPLIT_WORKERS: none


def test_the_split_config_passes_envoy_validate(tmp_path):
    path = tmp_path / "envoy.yaml"
    path.write_text(config.render(_replicated(SPLIT_WORKERS="1")))
    result = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart",
                             "--log-level", "error"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("variant", "api_host", "workers_host"), [("docker", "payment_svc", "payment_svc_workers"),
                                                                   ("kubernetes", "payment-svc", "payment-webhooks")])
def test_compose_and_kubernetes_send_the_gateways_webhooks_to_payment_svcs_workers(variant, api_host, workers_host):
    """docker-compose.yml and deploy/k8s run payment_svc's workers under a name of their own, on payment's port;
    they present payment_svc's certificate."""
    from edge import settings as edge_settings

    boot = config.bootstrap(getattr(edge_settings, variant)())
    clusters = _clusters(boot)
    hosts = {name: [endpoint["endpoint"]["address"]["socket_address"]["address"]
                    for group in clusters[name]["load_assignment"]["endpoints"] for endpoint in group["lb_endpoints"]]
             for name in ("payment", "payment_webhooks")}
    assert hosts == {"payment": [api_host], "payment_webhooks": [workers_host]}
    assert _ports(clusters["payment_webhooks"]) == _ports(clusters["payment"]) == [50053]
    assert clusters["payment_webhooks"]["transport_socket"] == clusters["payment"]["transport_socket"]  # same identity
    assert "payment_webhooks_ops" not in clusters  # /readyz asks the api processes
    [https] = [listener for listener in boot["static_resources"]["listeners"] if listener["name"] == "rest_tls"]
    hosts_routes = https["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
    routed = {route["route"]["cluster"] for host in hosts_routes for route in host["routes"]
              if route["name"].startswith("webhooks.")}
    assert routed == {"payment_webhooks"}
