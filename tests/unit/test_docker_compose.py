"""docker-compose.yml cannot run here (no Docker engine); check it agrees with the code instead."""

from __future__ import annotations

import pathlib

import yaml

from common.config import load_settings

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DEFAULTS = load_settings()
PORTS = {
    "cart_svc": ("CART_GRPC_PORT", DEFAULTS.cart_grpc_port),
    "order_svc": ("ORDER_GRPC_PORT", DEFAULTS.order_grpc_port),
    "payment_svc": ("PAYMENT_GRPC_PORT", DEFAULTS.payment_grpc_port),
    "enrollment_svc": ("ENROLLMENT_GRPC_PORT", DEFAULTS.enrollment_grpc_port),
}


def test_infrastructure_and_every_service_present_with_health_checks() -> None:
    for name in ("postgres", "redis", "nats", "edge", *PORTS):
        assert name in SERVICES, name
        assert "healthcheck" in SERVICES[name], name


def test_each_service_runs_its_module_on_its_port() -> None:
    for name, (variable, port) in PORTS.items():
        service = SERVICES[name]
        assert service["command"] == ["python", "-m", name]
        assert service["environment"][variable] == str(port)
        assert str(port) in service["expose"]
        assert f"127.0.0.1:{port}" in " ".join(service["healthcheck"]["test"])


def test_services_point_at_the_compose_servers() -> None:
    for name in PORTS:
        env = SERVICES[name]["environment"]
        assert "@postgres:5432/" in env["DATABASE_URL"] and env["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert env["NATS_URL"] == "nats://nats:4222"
        assert env["GRPC_HOST"] == "0.0.0.0"
        assert "JWT_SECRET" in env and "dev-only" not in env["JWT_SECRET"]


def test_nats_has_jetstream_on_file_storage_flushed_on_every_write() -> None:
    command = SERVICES["nats"]["command"]
    assert command == ["-c", "/etc/nats/nats.conf"]
    assert "./deploy/nats.conf:/etc/nats/nats.conf:ro" in SERVICES["nats"]["volumes"]
    config = (ROOT / "deploy" / "nats.conf").read_text()
    assert "jetstream" in config and "store_dir: /data" in config and "sync_interval: always" in config


def test_edge_uses_the_generated_docker_config_with_every_cluster() -> None:
    volumes = SERVICES["edge"]["volumes"]
    assert volumes[0].startswith("./edge/envoy.docker.yaml:/etc/envoy/envoy.yaml")
    assert "./gen/checkout.pb:/etc/envoy/checkout.pb:ro" in volumes
    rendered = (ROOT / "edge" / "envoy.docker.yaml").read_text()
    for name, (_, port) in PORTS.items():
        assert name in rendered and str(port) in rendered, name
