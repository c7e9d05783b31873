"""The checkout page (web/) as the edge serves it: direct responses with the transcoder off per
route, the right types and the security headers; the generated config script, which gives the
browser the development JWT secret only while the services use it."""

from __future__ import annotations

import re

import httpx
import pytest

from edge import config
from edge.settings import DOCKER_WEB_ROOT, WEB_DIR, EdgeSettings, docker, from_env

pytestmark = pytest.mark.timeout(120)

DEV_SECRET = "dev-only-insecure-jwt-secret-change-me"
FILES = {
    "/": ("index.html", "text/html"),
    "/index.html": ("index.html", "text/html"),
    "/assets/app.js": ("app.js", "text/javascript"),
    "/assets/app.css": ("app.css", "text/css"),
    "/assets/icon.svg": ("icon.svg", "image/svg+xml"),
}


@pytest.fixture(scope="module")
def page_edge(module_launcher):
    # no services at all: the page does not need them
    return module_launcher.edge()


@pytest.mark.parametrize("path", list(FILES))
def test_page_files_are_served_with_their_type_and_the_security_headers(page_edge, path):
    name, content_type = FILES[path]
    with page_edge.client() as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(content_type)
    assert response.content == (WEB_DIR / name).read_bytes()
    assert response.headers["cache-control"] == config.PAGE_CACHE_CONTROL
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-correlation-id"]
    assert not [h for h in response.headers if h.startswith(("grpc-", "x-envoy-"))]


def test_the_page_answers_with_a_query_string_and_to_head(page_edge):
    with page_edge.client() as client:
        back = client.get("/", params={"razorpay_payment_id": "pay_1", "razorpay_order_id": "order_1"})
        head = client.head("/")
    assert back.status_code == 200 and back.content == (WEB_DIR / "index.html").read_bytes()
    assert head.status_code == 200 and head.content == b""


def test_config_script_is_generated(page_edge):
    with page_edge.client() as client:
        response = client.get(config.PAGE_CONFIG_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.text == config.page_config_js(page_edge.settings)
    assert DEV_SECRET in response.text  # the test edge runs with the development defaults


@pytest.mark.parametrize(("method", "path"), [("POST", "/"), ("PUT", "/assets/app.js"), ("DELETE", "/index.html"), ("GET", "/assets/nope.css")])
def test_other_methods_and_unknown_assets_are_404_envelopes(page_edge, expect_envelope, method, path):
    with page_edge.client() as client:
        response = client.request(method, path)
    expect_envelope(response, 404, 4004)


def test_the_api_is_still_transcoded_beside_the_page(page_edge, expect_envelope):
    with page_edge.client() as client:
        response = client.get("/api/v1/internships")
    expect_envelope(response, 503, 4001)  # routed to the (absent) cart service, not to the page


def test_dev_login_only_with_the_development_secret(monkeypatch):
    monkeypatch.delenv("JWT_SECRET", raising=False)
    dev = from_env()
    assert dev.dev_login is True
    assert f'"secret": "{DEV_SECRET}"' in config.page_config_js(dev)

    monkeypatch.setenv("JWT_SECRET", "a-real-secret-nobody-may-see")
    monkeypatch.setenv("JWT_ISSUER", "elsewhere")
    real = from_env()
    assert real.dev_login is False and real.jwt_issuer == "elsewhere"
    script = config.page_config_js(real)
    assert '"dev_login": null' in script
    assert "a-real-secret" not in script and DEV_SECRET not in script
    assert "a-real-secret" not in config.render(real)

    # docker-compose always runs with a real secret: the committed config offers no dev login
    assert docker().dev_login is False
    assert DEV_SECRET not in config.DOCKER_CONFIG.read_text()
    assert f"{DOCKER_WEB_ROOT}/index.html" in config.DOCKER_CONFIG.read_text()


def test_the_settings_choose_the_checkout_script_and_the_csp_allows_it(monkeypatch):
    for name in ("RAZORPAY_BASE_URL", "RAZORPAY_CHECKOUT_JS_URL", "GATEWAY_EMULATOR_PORT", "EDGE_CSP"):
        monkeypatch.delenv(name, raising=False)
    dev = from_env()  # development: the emulator's script, its modal framed from the same origin
    assert dev.razorpay_checkout_js_url == "http://127.0.0.1:8090/v1/checkout.js"
    assert '"razorpay_checkout_js": "http://127.0.0.1:8090/v1/checkout.js"' in config.page_config_js(dev)
    policy = dict(config.security_headers(dev))["content-security-policy"]
    assert "script-src 'self' http://127.0.0.1:8090;" in policy
    assert "frame-src http://127.0.0.1:8090;" in policy and "frame-ancestors 'none'" in policy

    monkeypatch.setenv("RAZORPAY_BASE_URL", "https://api.razorpay.com")  # production: Razorpay's own
    real = from_env()
    assert real.razorpay_checkout_js_url == "https://checkout.razorpay.com/v1/checkout.js"
    policy = real.content_security_policy
    assert "script-src 'self' https://checkout.razorpay.com;" in policy
    assert "frame-src https://checkout.razorpay.com https://api.razorpay.com;" in policy
    assert docker().razorpay_checkout_js_url == "https://checkout.razorpay.com/v1/checkout.js"
    assert "https://checkout.razorpay.com" in config.DOCKER_CONFIG.read_text()

    monkeypatch.setenv("RAZORPAY_CHECKOUT_JS_URL", "https://cdn.example/rzp/checkout.js")  # set: it wins
    monkeypatch.setenv("EDGE_CSP", "default-src 'self'")
    chosen = from_env()
    assert '"razorpay_checkout_js": "https://cdn.example/rzp/checkout.js"' in config.page_config_js(chosen)
    assert chosen.content_security_policy == "default-src 'self'"  # EDGE_CSP replaces the whole policy


def test_web_root_empty_serves_no_page(monkeypatch):
    names = [r["name"] for r in _routes(EdgeSettings(web_root=""))]
    assert not [n for n in names if n.startswith("page_")]
    monkeypatch.setenv("EDGE_WEB_ROOT", "none")
    assert from_env().web_root == ""


def test_page_routes_switch_the_transcoder_off_and_come_before_the_api():
    routes = _routes(EdgeSettings())
    names = [r["name"] for r in routes]
    page = [r for r in routes if r["name"].startswith("page_")]
    assert {r["match"]["path"] for r in page} == {*FILES, config.PAGE_CONFIG_PATH}
    for route in page:
        assert route["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]["disabled"] is True
        assert names.index(route["name"]) < names.index("rest_catch_all")


def test_every_file_in_web_is_routed_and_small(tmp_path):
    config.check_page_files()
    for name in set(config.PAGE_FILES.values()):
        (tmp_path / name).write_bytes((WEB_DIR / name).read_bytes())
    config.check_page_files(tmp_path)
    (tmp_path / "extra.js").write_text("// nobody serves me")
    with pytest.raises(ValueError, match="extra.js"):
        config.check_page_files(tmp_path)
    (tmp_path / "extra.js").unlink()
    (tmp_path / "app.js").write_bytes(b"x" * (config.MAX_PAGE_FILE_BYTES + 1))
    with pytest.raises(ValueError, match="over"):
        config.check_page_files(tmp_path)


def test_the_page_keeps_to_the_strict_csp():
    """No inline scripts, inline styles or event-handler attributes: the default CSP allows only files
    from this origin ('self'), and the page needs no exception."""
    html = (WEB_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert "<style" not in html and not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    script = (WEB_DIR / "app.js").read_text()
    assert "innerHTML" not in script and "eval(" not in script and 'setAttribute("style"' not in script


def _routes(settings: EdgeSettings) -> list[dict]:
    boot = config.bootstrap(settings)
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"]


def test_page_is_reachable_without_any_service(page_edge):
    # /healthz is 503 (no services), yet the page loads: it can show the person the API's errors
    assert httpx.get(f"{page_edge.url}/healthz", timeout=5).status_code == 503
    assert httpx.get(f"{page_edge.url}/", timeout=5).status_code == 200
