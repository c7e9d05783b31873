"""return_url / cancel_url only on an allowed origin (CONTRACT.md "Additions", Orders): the rules
alone, then through create_order (400/1000 naming the field, nothing written), then the setting."""

from __future__ import annotations

import pytest

from common.settings import load_settings
from order_svc.app import return_origins
from order_svc.domain.return_urls import development_origins, parse_origin, url_problem
from tests.unit.order.fakes import world
from tests.unit.order.test_place_order import place, refused

DEV = tuple(parse_origin(text) for text in development_origins("interns.localhost", 8080, 8443))
PROD = (parse_origin("https://interns.example.com"), parse_origin("https://pay.interns.example.com:8443"))


@pytest.mark.parametrize("url", [
    "http://localhost:5173/paid?order=1", "http://127.0.0.1:8080/", "http://localhost/back",
    "http://interns.localhost:8080/#/orders/1", "http://pay.interns.localhost:8080/done", "HTTP://LOCALHOST:3000/x",
])
def test_development_allows_local_origins(url: str) -> None:
    assert url_problem(url, DEV) is None


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://localhost:8443/paid", True), ("https://127.0.0.1:8443/", True), ("https://pay.interns.localhost:8443/x", True),
    ("https://localhost:8080/", False), ("https://localhost:9443/", False),
])
def test_development_allows_the_edges_https_origins(url: str, allowed: bool) -> None:
    """The page served over HTTPS by the edge (EDGE_TLS_PORT) sends return URLs on its own origin."""
    origins = tuple(parse_origin(text) for text in development_origins("interns.localhost", 8080, 8443))
    assert (url_problem(url, origins) is None) is allowed


@pytest.mark.parametrize("url, problem", [
    ("javascript:alert(1)", "an absolute http(s) URL"),
    ("//evil.example/x", "an absolute http(s) URL"),
    ("/relative/path", "an absolute http(s) URL"),
    ("data:text/html,hi", "an absolute http(s) URL"),
    ("http://user@localhost:8080/", "no user info (user@host)"),
    ("http://localhost:8080@evil.example/", "no user info (user@host)"),
    ("http://evil.example/", "must be on an allowed origin (RETURN_URL_ORIGINS)"),
    ("http://localhost.evil.example/", "must be on an allowed origin (RETURN_URL_ORIGINS)"),
    ("http://interns.localhost:9999/", "must be on an allowed origin (RETURN_URL_ORIGINS)"),
    ("https://localhost:8080/", "must be on an allowed origin (RETURN_URL_ORIGINS)"),  # another scheme
    ("http://localhost:8080\\@evil.example/", "no spaces, backslashes or control characters"),
    ("http://localhost:8080/a b", "no spaces, backslashes or control characters"),
    ("http://localhost:8080/\x00", "no spaces, backslashes or control characters"),
    ("http://localhost:99999/", "a valid port"),
    ("http://localhost/" + "a" * 2048, "at most 2048 characters"),
])
def test_development_refuses(url: str, problem: str) -> None:
    assert url_problem(url, DEV) == problem


@pytest.mark.parametrize("url, allowed", [
    ("https://interns.example.com/orders/1", True),
    ("https://interns.example.com:443/orders/1", True),  # the default port, spelled out
    ("https://pay.interns.example.com:8443/x", True),
    ("https://pay.interns.example.com/x", False),  # that origin is allowed at port 8443 only
    ("http://interns.example.com/orders/1", False),  # http outside development
    ("https://evil.interns.example.com/", False),  # no wildcard hosts
    ("http://localhost:8080/", False),  # the dev default is not there when origins are set
])
def test_production_origins(url: str, allowed: bool) -> None:
    assert (url_problem(url, PROD) is None) is allowed


@pytest.mark.parametrize("text", ["http://interns.example.com", "ftp://localhost", "https://a.example/path",
                                  "https://user@a.example", "a.example", "https://a.example:*x", "https://"])
def test_bad_origins_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_origin(text)


def test_the_setting() -> None:
    assert return_origins(load_settings({})) == DEV
    configured = load_settings({"RETURN_URL_ORIGINS": "https://interns.example.com, https://pay.interns.example.com:8443"})
    assert return_origins(configured) == PROD
    with pytest.raises(ValueError, match="RETURN_URL_ORIGINS"):
        return_origins(load_settings({"RETURN_URL_ORIGINS": "http://interns.example.com"}))


async def test_create_order_names_the_field_and_writes_nothing() -> None:
    w = world()
    user = "5f0f2f4e-0000-4000-8000-000000000001"
    cart = w.cart.add_cart(user_id=user)
    error = await refused(place(w, user, cart, return_url="http://evil.example/", cancel_url="//evil.example"), 1000)
    assert error.validation_messages == ["return_url: must be on an allowed origin (RETURN_URL_ORIGINS)",
                                         "cancel_url: an absolute http(s) URL"]
    assert w.cart.calls == [] and w.payments.requests == [] and w.uow.published == [] and not w.uow.committed
    view = await place(w, user, cart, return_url="https://app.example/paid", cancel_url="http://localhost:3000/c")
    assert view.status == "awaiting_payment"
    assert (w.payments.requests[-1].return_url, w.payments.requests[-1].cancel_url) == (
        "https://app.example/paid", "http://localhost:3000/c")
