"""Envoy's metrics as Prometheus reads them: the metrics-only listener (docker-compose scrapes it;
edge/config.py `_metrics_listener`) serves the admin's /stats/prometheus and nothing else of the
admin, and every Envoy metric the alert rules and dashboards read (tests/support/metric_names.py
ENVOY_METRICS) is in it once a request went through."""

from __future__ import annotations

import httpx
import pytest

from edge import config as edge_config
from edge.settings import EdgeSettings
from tests.e2e.conftest import free_port, tls_edge_overrides
from tests.support.metric_names import ENVOY_METRICS

pytestmark = pytest.mark.timeout(120)


def series_names(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_the_metrics_listener_serves_what_the_rules_read_and_nothing_else_of_the_admin(launcher, cart_service,
                                                                                      dev_certs):
    # cart_service serves mutual TLS: the edge presents its certificate (tls_edge_overrides)
    edge = launcher.edge(ports={"cart": cart_service.port}, metrics_port=free_port(), **tls_edge_overrides(dev_certs))
    metrics = f"http://127.0.0.1:{edge.settings.metrics_port}"
    with edge.client() as api:
        assert api.get("/api/v1/ping").status_code == 200  # one request through to a service
    answer = httpx.get(f"{metrics}/stats/prometheus", timeout=5)
    assert answer.status_code == 200
    names = series_names(answer.text)
    assert ENVOY_METRICS <= names, sorted(ENVOY_METRICS - names)
    assert 'envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="edge"}' in answer.text
    for method, path in (("GET", "/quitquitquit"), ("POST", "/quitquitquit"), ("GET", "/config_dump"),
                         ("POST", "/stats/prometheus"), ("GET", "/stats")):
        assert httpx.request(method, f"{metrics}{path}", timeout=5).status_code == 404, (method, path)
    assert edge.alive()


def test_without_a_metrics_port_there_is_no_metrics_listener():
    listeners = edge_config.bootstrap(EdgeSettings())["static_resources"]["listeners"]
    assert [listener["name"] for listener in listeners] == ["rest"]
