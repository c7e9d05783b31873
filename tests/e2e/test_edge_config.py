"""The generated Envoy config: Envoy accepts it, and the committed docker variant is current."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge import config, descriptors, envelope
from edge.__main__ import envoy_binary
from edge.settings import (
    CLUSTER_SERVICES,
    DESCRIPTOR_PATH,
    HOST_SERVICES,
    LOCALHOST_ORIGIN_REGEX,
    WEB_DIR,
    EdgeSettings,
    docker,
)

pytestmark = pytest.mark.timeout(120)


def _validate(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart", "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_committed_docker_config_is_up_to_date():
    config.check_docker_config()


def test_rendered_config_passes_envoy_validate(tmp_path):
    path = tmp_path / "envoy.yaml"
    path.write_text(config.render(EdgeSettings()))
    result = _validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("require_tls", ["0", "1"])
def test_what_make_run_renders_with_its_certificates_passes_envoy_validate(tmp_path, require_tls):
    """The environment devstack gives the edge (devstack/certs.py): HTTPS listener, mutual TLS to
    every service; with EDGE_REQUIRE_TLS the plain listener only redirects."""
    from common.settings import load_settings
    from devstack import certs
    from edge.settings import from_env

    secrets = tmp_path / "certs"
    certs.ensure_dev_certs(secrets, "interns.localhost")
    env = {"GRPC_PLAINTEXT": "0", "EDGE_REQUIRE_TLS": require_tls, **certs.edge_env(secrets)}
    settings = from_env(load_settings(env))
    assert settings.https and settings.upstream_tls is not None and settings.require_tls is (require_tls == "1")
    boot = config.bootstrap(settings)
    listeners = {listener["name"]: listener for listener in boot["static_resources"]["listeners"]}
    assert set(listeners) == {"rest", "rest_tls"}
    assert listeners["rest_tls"]["address"]["socket_address"]["port_value"] == 8443
    plain_routes = listeners["rest"]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
    redirects = [route for host in plain_routes for route in host["routes"] if "redirect" in route]
    assert bool(redirects) is (require_tls == "1")
    for cluster in boot["static_resources"]["clusters"]:
        if cluster["name"] in ("cart", "order", "payment", "enrollment"):
            validation = cluster["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"]
            assert validation["match_typed_subject_alt_names"] == [
                {"san_type": "URI", "matcher": {"exact": f"spiffe://interns/{cluster['name']}_svc"}}]
    path = tmp_path / "envoy.yaml"
    path.write_text(config.render(settings))
    result = _validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_edge_refuses_to_render_without_tls_files_unless_plaintext_is_explicit():
    from common.settings import load_settings
    from edge.settings import from_env

    with pytest.raises(SystemExit, match="TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE"):
        from_env(load_settings({"GRPC_PLAINTEXT": "0"}))
    with pytest.raises(SystemExit, match="EDGE_REQUIRE_TLS needs the HTTPS listener"):
        from_env(load_settings({"GRPC_PLAINTEXT": "1", "EDGE_REQUIRE_TLS": "1"}))
    assert from_env(load_settings({"GRPC_PLAINTEXT": "1"})).upstream_tls is None


def test_docker_variant_passes_envoy_validate(tmp_path):
    # the same config, with the descriptor, page and certificate paths as they are outside the container
    from devstack import certs
    from edge.settings import UpstreamTls

    path = tmp_path / "envoy.docker.yaml"
    secrets = tmp_path / "certs"
    certs.ensure_dev_certs(secrets, "interns.localhost")
    outside = docker().with_(descriptor_path=str(DESCRIPTOR_PATH), web_root=str(WEB_DIR),
                             tls_cert_file=str(secrets / "edge-https.pem"), tls_key_file=str(secrets / "edge-https-key.pem"),
                             upstream_tls=UpstreamTls(str(secrets / "ca.pem"), str(secrets / "edge.pem"),
                                                      str(secrets / "edge-key.pem")))
    assert (docker().require_tls, docker().tls_cert_file) == (True, "/run/secrets/edge_https_cert")
    path.write_text(config.render(outside, docker_variant=True))
    result = _validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    text = config.DOCKER_CONFIG.read_text()
    for host in ("cart_svc", "order_svc", "payment_svc", "enrollment_svc"):
        assert f'address: "{host}"' in text
    assert 'address: "0.0.0.0"' in text


def test_cli_render_and_check(tmp_path):
    out = tmp_path / "envoy.yaml"
    subprocess.run([sys.executable, "-m", "edge", "render", "--out", str(out)], check=True, timeout=60)
    assert "grpc_json_transcoder" in out.read_text()
    check = subprocess.run([sys.executable, "-m", "edge", "check-docker"], timeout=60)
    assert check.returncode == 0


def test_every_service_in_the_descriptor_set_is_routed():
    services = descriptors.service_names(descriptors.load(DESCRIPTOR_PATH))
    routed = config.service_clusters(services)
    assert set(routed) == set(services)
    assert sorted(CLUSTER_SERVICES) == ["cart", "enrollment", "order", "payment"]
    with pytest.raises(ValueError, match="without a cluster"):
        config.service_clusters([*services, "checkout.v1.NewService"])


def test_transcoder_lists_the_descriptor_services():
    boot = config.bootstrap(EdgeSettings())
    filters = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    transcoder = next(f for f in filters if f["name"] == "envoy.filters.http.grpc_json_transcoder")["typed_config"]
    assert transcoder["services"] == descriptors.service_names(descriptors.load(DESCRIPTOR_PATH))
    assert transcoder["convert_grpc_status"] is True
    assert transcoder["print_options"]["always_print_primitive_fields"] is True
    assert transcoder["print_options"]["preserve_proto_field_names"] is True
    assert [f["name"] for f in filters].index("envoy.filters.http.cors") < [f["name"] for f in filters].index(
        "envoy.filters.http.grpc_json_transcoder"
    )


@pytest.mark.parametrize(
    ("template", "path", "matches"),
    [
        ("/api/v1/cart/{token}", "/api/v1/cart/abc", True),
        ("/api/v1/cart/{token}", "/api/v1/cart/abc/", True),
        ("/api/v1/cart/{token}", "/api/v1/cart/abc/items", False),
        ("/api/v1/admin/exchange-rates/{currency}", "/api/v1/admin/exchange-rates/USD", True),
        ("/api/v1/admin/exchange-rates/{currency}", "/api/v1/admin/exchangeXrates/USD", False),
        ("/v1/{name=shelves/*}", "/v1/shelves/7", True),
        ("/v1/{name=shelves/*}", "/v1/shelves", False),
        ("/v1/{name=**}", "/v1/a/b/c", True),
    ],
)
def test_lua_path_patterns(template, path, matches):
    import re

    # Lua patterns here only use ^ $ [^/]+ .* and %-escapes: translate to a Python regex
    lua = envelope.lua_path_pattern(template)
    regex = re.sub(r"%(.)", lambda m: re.escape(m.group(1)), lua)
    assert bool(re.search(regex, path)) is matches, (lua, regex)


def test_generated_tables_follow_the_catalog():
    http = envelope.http_by_code()
    assert http[3001] == 402 and http[1002] == 410 and http[4001] == 503
    generic = envelope.generic_by_http()
    assert generic[404].code == 4004 and generic[503].code == 4001 and generic[500].code == 5000
    assert generic[501].code == 5001 and generic[413].code == 4013 and generic[429].code == 429


def test_security_header_settings():
    plain = config.security_headers(EdgeSettings())
    assert "strict-transport-security" not in dict(plain)
    assert "strict-transport-security" not in dict(config.security_headers(EdgeSettings(hsts_max_age=600)))
    strict = dict(config.security_headers(EdgeSettings(hsts_max_age=600, csp="default-src 'self'"), https=True))
    assert strict["strict-transport-security"] == "max-age=600; includeSubDomains"
    assert "strict-transport-security" not in dict(config.security_headers(EdgeSettings(hsts_max_age=0), https=True))
    assert strict["content-security-policy"] == "default-src 'self'"
    assert "frame-ancestors 'none'" in dict(plain)["content-security-policy"]


# ---------------------------------------------------------------------------------------------
# the dedicated hosts (CONTRACT.md "Hosts")


def _virtual_hosts(boot: dict) -> dict[str, dict]:
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["strip_any_host_port"] is True  # cart.<domain>:8080 is cart.<domain>
    return {vhost["name"]: vhost for vhost in hcm["route_config"]["virtual_hosts"]}


def _service_prefixes(vhost: dict) -> set[str]:
    """`/<service>/` of every route to a service (a read's route matches its whole path)."""
    return {"/{}/".format((r["match"].get("prefix") or r["match"]["path"]).split("/")[1]) for r in vhost["routes"]
            if r.get("route", {}).get("cluster") not in (None, config.UNROUTED)}


def test_dedicated_hosts_transcode_and_route_only_their_services():
    boot = config.bootstrap(EdgeSettings(domain="shop.example"))
    hosts = _virtual_hosts(boot)
    assert list(hosts) == ["checkout", "cart_host", "pay_host"]
    assert hosts["cart_host"]["domains"] == ["cart.shop.example"]
    assert hosts["pay_host"]["domains"] == ["pay.shop.example"]
    assert hosts["checkout"]["domains"] == ["*"]
    expected = {"cart_host": ["checkout.v1.CatalogService", "checkout.v1.CartService"],
                "pay_host": ["checkout.v1.OrderService", "checkout.v1.PaymentService"]}
    for name, services in expected.items():
        transcoder = hosts[name]["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]
        assert transcoder["services"] == services
        assert transcoder["request_validation_options"]["reject_unknown_method"] is True
        assert _service_prefixes(hosts[name]) == {f"/{service}/" for service in services}
        assert not [r for r in hosts[name]["routes"] if r["name"].startswith("page_")]  # the page is the main host's
        names = [r["name"] for r in hosts[name]["routes"]]
        assert names[:2] == ["native_grpc_refused", "refused"] and names[-1] == "rest_catch_all"
    everything = descriptors.service_names(descriptors.load(DESCRIPTOR_PATH))
    assert _service_prefixes(hosts["checkout"]) == {f"/{service}/" for service in everything}
    assert "envoy.filters.http.grpc_json_transcoder" not in hosts["checkout"]["typed_per_filter_config"]
    assert [r for r in hosts["checkout"]["routes"] if r["name"].startswith("page_")]


def test_each_host_has_its_own_cors_origins_and_rate_limit_buckets():
    settings = EdgeSettings(cors_origins=("https://www.example",), pay_cors_origins=("https://pay.example",))
    hosts = _virtual_hosts(config.bootstrap(settings))

    def origins(name: str) -> list:
        return hosts[name]["typed_per_filter_config"]["envoy.filters.http.cors"]["allow_origin_string_match"]

    assert origins("checkout") == [{"exact": "https://www.example"}]
    assert origins("cart_host") == [{"exact": "https://www.example"}]  # no list of its own: the main host's
    assert origins("pay_host") == [{"exact": "https://pay.example"}]
    limits = [hosts[name]["typed_per_filter_config"]["envoy.filters.http.local_ratelimit"] for name in hosts]
    assert sorted(limit["stat_prefix"] for limit in limits) == [
        "edge_rate_limit", "edge_rate_limit_cart", "edge_rate_limit_pay"]
    assert all(limit["token_bucket"]["tokens_per_fill"] == settings.rate_limit_rps for limit in limits)
    localhost = _virtual_hosts(config.bootstrap(EdgeSettings()))
    assert localhost["cart_host"]["typed_per_filter_config"]["envoy.filters.http.cors"][
        "allow_origin_string_match"] == [{"safe_regex": {"regex": LOCALHOST_ORIGIN_REGEX}}]


def test_host_services_must_exist_in_the_descriptor_set(monkeypatch):
    services = descriptors.service_names(descriptors.load(DESCRIPTOR_PATH))
    assert config.host_services(services)["pay"] == ["checkout.v1.OrderService", "checkout.v1.PaymentService"]
    monkeypatch.setitem(HOST_SERVICES, "pay", ("OrderService", "DisputeService"))
    with pytest.raises(ValueError, match="DisputeService"):
        config.bootstrap(EdgeSettings())


def test_hosts_with_their_own_domain_and_origins_pass_envoy_validate(tmp_path):
    path = tmp_path / "envoy.yaml"
    path.write_text(config.render(EdgeSettings(domain="checkout.example.com", cors_origins=("https://a.example",),
                                               cart_cors_origins=("https://b.example", "https://c.example"),
                                               pay_cors_origins=("https://d.example",))))
    result = _validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cart.checkout.example.com" in path.read_text() and "pay.checkout.example.com" in path.read_text()


def test_the_edge_reads_its_hosts_from_the_settings():
    from common.settings import load_settings
    from edge.settings import from_env

    edge = from_env(load_settings({"EDGE_DOMAIN": "Shop.Example.", "EDGE_CART_CORS_ORIGINS": "https://s.example",
                                   "EDGE_CORS_ORIGINS": "https://m.example"}))
    assert (edge.host("cart"), edge.host("pay")) == ("cart.shop.example", "pay.shop.example")
    assert edge.host_cors_origins("cart") == ("https://s.example",)
    assert edge.host_cors_origins("pay") == ("https://m.example",)
    with pytest.raises(SystemExit, match="EDGE_DOMAIN"):
        from_env(load_settings({"EDGE_DOMAIN": "shop example"}))


def test_the_docker_config_serves_the_default_hosts_and_a_deployment_renders_its_own(tmp_path):
    text = config.DOCKER_CONFIG.read_text()
    assert '"cart.interns.localhost"' in text and '"pay.interns.localhost"' in text
    refused = subprocess.run([sys.executable, "-m", "edge", "render", "--docker", "--domain", "shop.example"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--out" in refused.stderr  # the committed file keeps the default
    out = tmp_path / "envoy.yaml"
    subprocess.run([sys.executable, "-m", "edge", "render", "--docker", "--domain", "shop.example", "--out", str(out)],
                   check=True, timeout=60)
    assert '"cart.shop.example"' in out.read_text() and config.docker_config_is_current()


def test_the_edge_traces_every_request_and_answers_its_trace_id():
    """CONTRACT.md "Operations": Envoy's OpenTelemetry tracer in the HCM, its spans to the collector
    cluster; x-trace-id set by the first filter, so it runs last on every answer (local replies too)."""
    from edge.settings import Collector

    settings = EdgeSettings().with_(trace_collector=Collector("127.0.0.1", 4999), trace_sample_percent=25.0)
    boot = config.bootstrap(settings)
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    tracing = hcm["tracing"]
    assert tracing["random_sampling"] == {"value": 25.0}
    provider = tracing["provider"]["typed_config"]
    assert provider["service_name"] == "edge"
    assert provider["http_service"]["http_uri"] == {"uri": "http://127.0.0.1:4999/v1/traces",
                                                    "cluster": config.TRACE_COLLECTOR, "timeout": "1s"}
    clusters = {c["name"]: c for c in boot["static_resources"]["clusters"]}
    address = clusters[config.TRACE_COLLECTOR]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert address["endpoint"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 4999}
    first = hcm["http_filters"][0]
    assert first["name"] == "envoy.filters.http.header_mutation"
    (mutation,) = first["typed_config"]["mutations"]["response_mutations"]
    assert mutation["append"]["header"] == {"key": "x-trace-id", "value": "%TRACE_ID%"}
    assert "x-trace-id" in config._cors_policy(())["expose_headers"]


def test_the_edge_exports_to_the_otlp_endpoint_when_one_is_set():
    from common.settings import load_settings
    from edge.settings import Collector, from_env

    assert from_env(load_settings({})).trace_collector == Collector("127.0.0.1", 54318)
    remote = from_env(load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example:4318/",
                                     "TRACING_SAMPLE_RATIO": "0.1"}))
    assert remote.trace_collector == Collector("otel.example", 4318, "/v1/traces", tls=True)
    assert remote.trace_sample_percent == pytest.approx(10.0)
    assert from_env(load_settings({"TRACING": "0"})).trace_sample_percent == 0.0
    assert docker().trace_collector.url == "http://jaeger:4318/v1/traces"
    tls = config._trace_collector_cluster(remote)
    assert tls["transport_socket"]["typed_config"]["sni"] == "otel.example"
    with pytest.raises(SystemExit, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        Collector.from_endpoint("jaeger:4318")
