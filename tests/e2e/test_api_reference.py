"""The API reference through a real edge: GET /openapi.json is gen/openapi.json, GET /docs is
Swagger UI rendering it, every asset of which the edge itself serves (no CDN, no other host)."""

from __future__ import annotations

import json
import re

import pytest

from edge import config
from edge.settings import ROOT, WEB_DIR

pytestmark = pytest.mark.timeout(120)

DOCUMENT = ROOT / "gen" / "openapi.json"
SHOT = ROOT / "test-artifacts" / "screenshots" / "api-reference.png"


@pytest.fixture(scope="module")
def docs_edge(module_launcher):
    # no services: the reference needs none
    return module_launcher.edge()


def test_openapi_json_is_the_generated_document(docs_edge):
    with docs_edge.client() as client:
        response = client.get("/openapi.json")
        head = client.head("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.content == DOCUMENT.read_bytes()
    assert response.json()["openapi"] == "3.1.0"
    assert response.headers["x-correlation-id"] and response.headers["x-content-type-options"] == "nosniff"
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize("path", ["/docs", "/docs/"])
def test_docs_loads_every_asset_from_the_edge_itself(docs_edge, path):
    with docs_edge.client() as client:
        page = client.get(path)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        html = page.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>: the CSP would block it"
        assert "<style" not in html and not re.search(r"\sstyle=", html)
        assets = re.findall(r'\s(?:src|href)="([^"]+)"', html)
        assert {"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/docs.js"} <= set(assets)
        for asset in assets:
            assert asset.startswith("/") and not asset.startswith("//"), f"{asset} is not on this edge"
            response = client.get(asset)
            assert response.status_code == 200, (asset, response.text[:200])
            if asset.startswith("/docs/"):
                assert response.content == (WEB_DIR / "docs" / asset.removeprefix("/docs/")).read_bytes()
        script = client.get("/docs/docs.js").text
    assert 'url: "/openapi.json"' in script and "validatorUrl: null" in script
    assert not re.search(r"https?://", script)


def test_bundle_types(docs_edge):
    with docs_edge.client() as client:
        js = client.get("/docs/swagger-ui-bundle.js")
        css = client.get("/docs/swagger-ui.css")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
def test_the_reference_is_on_the_main_host_only(docs_edge, expect_envelope, path):
    """The dedicated hosts serve a part of the API: a document of all of it would mislead there."""
    with docs_edge.client() as client:
        for prefix in ("cart", "pay"):
            response = client.get(path, headers={"Host": docs_edge.settings.host(prefix)})
            expect_envelope(response, 404, 4004)


@pytest.mark.parametrize(("method", "path"), [("POST", "/openapi.json"), ("DELETE", "/docs"), ("GET", "/docs/nope.js")])
def test_other_methods_and_unknown_files_are_404_envelopes(docs_edge, expect_envelope, method, path):
    with docs_edge.client() as client:
        expect_envelope(client.request(method, path), 404, 4004)


def test_routes_and_files_agree():
    config.check_docs_files()
    routes = {r["name"]: r for r in config.docs_routes(config.EdgeSettings())}
    assert {r["match"]["path"] for r in routes.values()} == {config.OPENAPI_PATH, *config.DOCS_FILES}
    assert routes["openapi_json"]["direct_response"]["body"]["filename"] == str(DOCUMENT)
    for route in routes.values():
        assert route["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]["disabled"] is True
    assert json.loads(DOCUMENT.read_text())["paths"]
    # without the page (EDGE_WEB_ROOT=none) the document is still served, the HTML reference is not
    assert [r["name"] for r in config.docs_routes(config.EdgeSettings(web_root=""))] == ["openapi_json"]


def test_docs_renders_in_chromium_under_the_csp_with_nothing_from_elsewhere(docs_edge):
    """Swagger UI renders every operation of the document, with the edge's CSP in force, asking
    nothing of any other origin and raising no JavaScript error."""
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed", pytrace=False)
    document = json.loads(DOCUMENT.read_text())
    operations = sum(len(methods) for methods in document["paths"].values())
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requested: list[str] = []
            problems: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" or "Content Security Policy" in msg.text else None)
            page.goto(f"{docs_edge.url}/docs", wait_until="networkidle")
            page.wait_for_selector(".swagger-ui .opblock", timeout=15000)
            assert document["info"]["title"] in page.inner_text(".swagger-ui .info .title")
            assert page.locator(".swagger-ui .opblock").count() == operations
            SHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOT))
            page.locator(".opblock-summary-path[data-path='/api/v1/order']").first.click()  # an operation opens
            page.wait_for_selector("text=Idempotency-Key", timeout=5000)
        finally:
            browser.close()
    elsewhere = [url for url in requested if not url.startswith(docs_edge.url) and not url.startswith("data:")]
    assert not elsewhere, f"the reference asked other origins: {elsewhere}"
    assert f"{docs_edge.url}/openapi.json" in requested
    assert not problems, problems
