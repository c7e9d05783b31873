"""The generated Envoy config: Envoy accepts it, and the committed docker variant is current."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge import config, descriptors, envelope
from edge.__main__ import envoy_binary
from edge.settings import CLUSTER_SERVICES, DESCRIPTOR_PATH, WEB_DIR, EdgeSettings, docker

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


def test_docker_variant_passes_envoy_validate(tmp_path):
    # the same config, with the descriptor and page paths as they are outside the container
    path = tmp_path / "envoy.docker.yaml"
    outside = docker().with_(descriptor_path=str(DESCRIPTOR_PATH), web_root=str(WEB_DIR))
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
    strict = dict(config.security_headers(EdgeSettings(hsts_max_age=31536000, csp="default-src 'self'")))
    assert strict["strict-transport-security"].startswith("max-age=31536000")
    assert strict["content-security-policy"] == "default-src 'self'"
    assert "frame-ancestors 'none'" in dict(plain)["content-security-policy"]
