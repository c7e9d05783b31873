"""What `make run-ha` starts besides the servers (devstack/ha.py): each service twice on its own
ports, everything else once; its server ports from HA_* variables."""

from __future__ import annotations

import pytest

from devstack import ha, roles, stack


def test_each_service_twice_on_its_ports_plus_the_step_and_the_rest_once() -> None:
    env = {"SPLIT_WORKERS": "1", "SERVICE_REPLICAS": "2", "REPLICA_PORT_STEP": "100"}
    started = ha.replicated(stack.services(env), env)
    assert [(s.name, s.port) for s in started] == [
        ("trace_receiver", 54318),
        ("cart_svc.1", 50051), ("cart_svc.2", 50151),
        ("order_svc.1", 50052), ("order_svc.2", 50152),
        ("payment_svc.1", 50053), ("payment_svc.2", 50153),
        ("enrollment_svc.1", 50054), ("enrollment_svc.2", 50154),
        ("gateway_emulator", 8090),
        ("edge", 8080),
    ]
    second_cart = started[2]
    assert second_cart.env == {"CART_GRPC_PORT": "50151", "CART_METRICS_PORT": "9201"}
    assert ha.identity(second_cart.name) == "cart_svc"  # its certificate is the service's


def test_server_ports_from_the_environment() -> None:
    assert ha.HaPorts.from_env({}) == ha.HaPorts()
    ports = ha.HaPorts.from_env({"HA_POSTGRES_PORT": "19050", "HA_NATS_PORTS": "19030,19031,19032"})
    assert (ports.postgres, ports.nats) == (19050, (19030, 19031, 19032))
    with pytest.raises(SystemExit):
        ha.HaPorts.from_env({"HA_NATS_PORTS": "19030,19031"})


def test_split_workers_puts_each_service_process_beside_a_workers_twin_on_the_next_ports() -> None:
    env = {"SPLIT_WORKERS": "1", "REPLICA_PORT_STEP": "100"}
    started = roles.with_workers(stack.services(env), env)
    order = [s for s in started if ha.identity(s.name) == "order_svc"]
    assert [(s.name, s.port, s.env) for s in order] == [
        ("order_svc", 50052, {"SERVICE_ROLE": "api"}),
        ("order_svc.workers", 50152, {"ORDER_GRPC_PORT": "50152", "ORDER_METRICS_PORT": "9202", "SERVICE_ROLE": "workers"}),
    ]
    assert [s.name for s in started if ha.identity(s.name) not in ha.REPLICATED] == ["trace_receiver", "gateway_emulator",
                                                                                     "edge"]


def test_split_workers_of_replicas_come_after_every_replica() -> None:
    env = {"SPLIT_WORKERS": "1", "SERVICE_REPLICAS": "2", "REPLICA_PORT_STEP": "100"}
    started = roles.with_workers(ha.replicated(stack.services(env), env), env)
    assert [(s.name, s.port) for s in started if ha.identity(s.name) == "cart_svc"] == [
        ("cart_svc.1", 50051), ("cart_svc.1.workers", 50251), ("cart_svc.2", 50151), ("cart_svc.2.workers", 50351),
    ]


def test_without_split_workers_every_service_process_is_left_as_it_is() -> None:
    env = {"REPLICA_PORT_STEP": "100"}
    services = stack.services(env)
    assert roles.with_workers(services, env) == services
