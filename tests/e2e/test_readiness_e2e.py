"""GET /readyz through the edge: every service's own readiness (its database, NATS, and Redis for
cart_svc), 200 only when all are ready; 503 names who is not, and is not wrapped as an error."""

from __future__ import annotations

import pytest

from tests.support.processes import free_port


@pytest.fixture(scope="module")
def stack_services():
    return ("cart", "order", "payment", "enrollment")


def test_readyz_is_200_when_every_service_reaches_its_dependencies(stack):
    with stack.client() as client:
        response = client.get("/readyz")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["ready"] is True
    assert set(body["services"]) == {"cart_svc", "order_svc", "payment_svc", "enrollment_svc"}
    for name, report in body["services"].items():
        assert report["ready"] is True and report["service"] == name
        assert report["dependencies"]["database"] == "up" and report["dependencies"]["nats"] == "up"
    assert body["services"]["cart_svc"]["dependencies"]["redis"] == "up"
    assert "redis" not in body["services"]["order_svc"]["dependencies"]


def test_readyz_is_503_naming_a_service_that_does_not_answer_and_healthz_stays_liveness(stack):
    ports = {name: int(service.port) for name, service in stack.services.items()}
    ops = {name: stack.settings.metrics_port(name) for name in stack.services}
    ops["enrollment"] = free_port()  # nothing listens there
    edge = stack.launcher.edge(ports=ports, ops_ports=ops, healthz_clusters=tuple(ports))
    edge.wait_healthz(200)
    with edge.client() as client:
        response = client.get("/readyz")
        live = client.get("/healthz")
    assert response.status_code == 503 and live.status_code == 200
    body = response.json()
    assert body["ready"] is False and "error" not in body  # the report, not an error envelope
    assert body["services"]["enrollment_svc"] == {"ready": False, "dependencies": {"process": "not answering"}}
    assert body["services"]["cart_svc"]["ready"] is True
