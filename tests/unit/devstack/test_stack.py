"""What `make run` starts, in which order (devstack/stack.py): each service's schema migrated, the
sample catalog loaded, then the local trace receiver (the edge's spans), the four services, the
gateway emulator and the edge on the ports the settings give them."""

from __future__ import annotations

from devstack import commands, stack


def test_migrations_then_the_catalog_before_any_service() -> None:
    assert [(step.name, step.argv) for step in stack.PREPARE] == [
        ("migrate", ("python", "-m", "common.migrations", "setup")),
        ("seed", ("python", "-m", "cart_svc.seed")),
    ]


def test_the_trace_receiver_the_services_the_emulator_and_the_edge_last() -> None:
    started = stack.services({})
    assert [(s.name, s.argv[1:], s.port) for s in started] == [
        ("trace_receiver", ("-m", "devstack.trace_receiver"), 54318),
        ("cart_svc", ("-m", "cart_svc"), 50051),
        ("order_svc", ("-m", "order_svc"), 50052),
        ("payment_svc", ("-m", "payment_svc"), 50053),
        ("enrollment_svc", ("-m", "enrollment_svc"), 50054),
        ("gateway_emulator", ("-m", "gateway_emulator"), 8090),
        ("edge", ("-m", "edge", "run"), 8080),
    ]
    assert started[-1].health_url == "http://127.0.0.1:8080/healthz"


def test_ports_and_hosts_follow_the_settings() -> None:
    env = {"CART_GRPC_PORT": "6001", "EDGE_PORT": "18080", "EDGE_DOMAIN": "shop.localhost"}
    started = {s.name: s for s in stack.services(env)}
    assert started["cart_svc"].port == 6001 and started["edge"].health_url == "http://127.0.0.1:18080/healthz"
    assert stack.dedicated_hosts(env) == ("cart.shop.localhost", "pay.shop.localhost")
    line = commands._ready_line(list(started.values()), len(started), env)
    assert line.startswith("ready: http://127.0.0.1:18080/")
    assert "http://cart.shop.localhost:18080/" in line and "http://pay.shop.localhost:18080/" in line


def test_make_run_gives_each_process_its_own_certificate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """devstack/certs.py issues them into .run/certs/; every service gets its own identity's files,
    the edge its own and the HTTPS ones, the gateway emulator none."""
    for name in ("cart_svc", "order_svc", "payment_svc", "enrollment_svc"):
        env = commands._tls_env(name, tmp_path)
        assert env["TLS_CERT_FILE"] == str(tmp_path / f"{name}.pem")
        assert env["TLS_KEY_FILE"] == str(tmp_path / f"{name}-key.pem")
        assert env["TLS_CA_FILE"] == str(tmp_path / "ca.pem") and "GRPC_PLAINTEXT" not in env
    edge = commands._tls_env("edge", tmp_path)
    assert (edge["TLS_CERT_FILE"], edge["EDGE_TLS_CERT_FILE"]) == (str(tmp_path / "edge.pem"),
                                                                    str(tmp_path / "edge-https.pem"))
    assert commands._tls_env("gateway_emulator", tmp_path) == {}
    line = commands._ready_line(stack.services({}), 6, {})
    assert "https://localhost:8443/" in line


def test_no_trace_receiver_when_a_collector_takes_the_spans() -> None:
    started = [s.name for s in stack.services({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})]
    assert "trace_receiver" not in started and started[-1] == "edge"
