"""The admin API through the edge (CONTRACT.md "Admin", docs/API.md's dead letters): real Envoy,
real cart_svc (coupons, sales, internships, exchange rates) and enrollment_svc (dead letters)."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.stack import UUID_RE, check_cart, check_estimate, json_ok, timestamp

pytestmark = pytest.mark.timeout(180)

BACKEND = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000001"
DESIGN = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000003"
BACKEND_1M = "7a1e0000-0000-4000-8000-000000000101"  # 1499.00
COUPON_FIELDS = {"code", "kind", "value", "currency", "min_subtotal", "starts_at", "ends_at", "max_redemptions",
                 "max_redemptions_per_user", "internship_ids", "redeemed_count", "listed"}
SALE_FIELDS = {"sale_slug", "kind", "value", "internship_ids", "starts_at", "ends_at", "active", "currency"}
GBP_SAMPLE_RATE = "0.0095"


@pytest.fixture(scope="module")
def stack_services():
    return ("cart", "enrollment")  # enrollment_svc: the dead-letter routes


@pytest.fixture(scope="module")
def api(stack):
    with stack.client() as client:
        yield client


def fresh_code() -> str:
    return f"adm-{uuid.uuid4().hex[:10]}"


def fresh_slug() -> str:
    return f"adm-sale-{uuid.uuid4().hex[:8]}"


def fields_of(error: dict) -> set[str]:
    assert error["validation_messages"], error
    return {message.split(":")[0] for message in error["validation_messages"]}


# --------------------------------------------------------------------------------------------
# who may call

ADMIN_ROUTES = {
    "coupons": ("POST", "/api/v1/admin/coupons"),
    "sales": ("POST", "/api/v1/admin/sales"),
    "internships": ("POST", "/api/v1/admin/internships"),
    "exchange-rate": ("PUT", "/api/v1/admin/exchange-rates/GBP"),
}
DEAD_LETTER_ROUTES = {
    "dead-letters": ("GET", "/api/v1/admin/dead-letters"),
    "replay": ("POST", f"/api/v1/admin/dead-letters/{uuid.uuid4()}/replay"),
}


def valid_body(route: str) -> dict | None:
    return {
        "coupons": {"code": fresh_code(), "kind": "percent", "value": "5"},
        "sales": {"sale_slug": fresh_slug(), "kind": "percent", "value": "5"},
        "internships": {"title": "Never created", "plans": [{"period": {"value": 1, "unit": "month"}, "price": "10"}]},
        "exchange-rate": {"rate": "9.99"},
        "dead-letters": None,
        "replay": {},
    }[route]


@pytest.mark.parametrize("route", [*ADMIN_ROUTES, *DEAD_LETTER_ROUTES])
@pytest.mark.parametrize("who", ["anonymous", "student", "no-roles", "invalid-token", "expired-admin"])
def test_only_admins_may_call(stack, api, expect_envelope, route, who):
    method, path = {**ADMIN_ROUTES, **DEAD_LETTER_ROUTES}[route]
    headers = {
        "anonymous": None,
        "student": stack.bearer(roles=["student"]),
        "no-roles": stack.bearer(),
        "invalid-token": {"Authorization": "Bearer not-a-jwt"},
        "expired-admin": stack.bearer(roles=["admin"], ttl_seconds=-60),
    }[who]
    for body in (valid_body(route), {} if method != "GET" else None):  # refused before any field is looked at
        response = api.request(method, path, json=body, headers=headers)
        if who in ("student", "no-roles"):
            error = expect_envelope(response, 403, 1102)
        else:
            error = expect_envelope(response, 401, 1101)
        assert error["validation_messages"] == [], error
    if route == "exchange-rate":  # nothing changed
        json_ok(api.put("/api/v1/admin/exchange-rates/GBP", json={"rate": GBP_SAMPLE_RATE}, headers=stack.admin()))


# --------------------------------------------------------------------------------------------
# coupons


def test_create_coupon(stack, api):
    code = fresh_code()
    response = api.post("/api/v1/admin/coupons", headers=stack.admin(), json={
        "code": code, "kind": "fixed", "value": "250", "min_subtotal": "1000", "starts_at": "2026-01-01T05:30:00+05:30",
        "ends_at": "2099-01-01T00:00:00Z", "max_redemptions": 100, "max_redemptions_per_user": 1,
        "internship_ids": [DESIGN, BACKEND]})
    coupon = json_ok(response)
    assert coupon == {
        "code": code.upper(), "kind": "fixed", "value": "250.00", "currency": "INR", "min_subtotal": "1000.00",
        "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z", "max_redemptions": 100,
        "max_redemptions_per_user": 1, "internship_ids": sorted([BACKEND, DESIGN]), "redeemed_count": 0, "listed": False}
    # and it works on a cart at once
    cart = check_cart(json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": BACKEND_1M, "quantity": 1}]})))
    applied = check_cart(json_ok(api.post(f"/api/v1/cart/{cart['token']}/coupon", json={"code": code})))
    assert (applied["discount_code"], applied["discount_amount"]) == (code.upper(), "250.00")


def test_coupon_defaults_are_printed(stack, api):
    coupon = json_ok(api.post("/api/v1/admin/coupons", json={"code": fresh_code(), "kind": "percent", "value": "12.5"},
                              headers=stack.admin()))
    assert set(coupon) == COUPON_FIELDS
    assert (coupon["value"], coupon["currency"], coupon["min_subtotal"]) == ("12.50", "INR", "0.00")
    assert (coupon["starts_at"], coupon["ends_at"], coupon["max_redemptions"], coupon["max_redemptions_per_user"]) == ("", "", 0, 0)
    assert (coupon["internship_ids"], coupon["redeemed_count"]) == ([], 0)


def test_fixed_coupon_in_another_currency(stack, api):
    coupon = json_ok(api.post("/api/v1/admin/coupons", json={"code": fresh_code(), "kind": "fixed", "value": "5", "currency": "USD"},
                              headers=stack.admin()))
    assert (coupon["kind"], coupon["value"], coupon["currency"]) == ("fixed", "5.00", "USD")


def test_duplicate_coupon_code_is_409_1006_whatever_the_case(stack, api, expect_envelope):
    code = fresh_code()
    json_ok(api.post("/api/v1/admin/coupons", json={"code": code, "kind": "percent", "value": "5"}, headers=stack.admin()))
    error = expect_envelope(api.post("/api/v1/admin/coupons", json={"code": code.upper(), "kind": "fixed", "value": "50"},
                                     headers=stack.admin()), 409, 1006)
    assert error["retryable"] is False and error["suggested_action"]
    expect_envelope(api.post("/api/v1/admin/coupons", json={"code": code, "kind": "percent", "value": "5"}, headers=stack.admin()), 409, 1006)


def test_every_bad_coupon_field_is_listed(stack, api, expect_envelope):
    error = expect_envelope(api.post("/api/v1/admin/coupons", headers=stack.admin(), json={
        "code": "x!", "kind": "bogus", "value": "-1", "currency": "XYZ", "min_subtotal": "abc", "starts_at": "yesterday",
        "ends_at": "2026-01-01T00:00:00", "max_redemptions": -1, "max_redemptions_per_user": -2, "internship_ids": ["nope"]}), 400, 1000)
    assert fields_of(error) == {"code", "kind", "value", "currency", "min_subtotal", "starts_at", "ends_at", "max_redemptions",
                                "max_redemptions_per_user", "internship_ids[0]"}


@pytest.mark.parametrize("body", [
    {"kind": "percent", "value": "100.01"},
    {"kind": "percent", "value": "0"},
    {"kind": "percent", "value": "10", "currency": "USD"},
    {"kind": "fixed", "value": "10.001"},
    {"kind": "fixed", "value": "10", "starts_at": "2026-02-01T00:00:00Z", "ends_at": "2026-02-01T00:00:00Z"},
    {"kind": "percent"},
    {},
])
def test_coupon_value_and_window_rules(stack, api, expect_envelope, body):
    expect_envelope(api.post("/api/v1/admin/coupons", json={"code": fresh_code(), **body}, headers=stack.admin()), 400, 1000)


def test_coupon_for_an_unknown_internship_is_1005(stack, api, expect_envelope):
    unknown = str(uuid.uuid4())
    code = fresh_code()
    error = expect_envelope(api.post("/api/v1/admin/coupons", headers=stack.admin(), json={
        "code": code, "kind": "percent", "value": "5", "internship_ids": [BACKEND, unknown]}), 404, 1005)
    assert any(unknown in message for message in error["validation_messages"]), error
    # nothing was created: the code is still free
    json_ok(api.post("/api/v1/admin/coupons", json={"code": code, "kind": "percent", "value": "5"}, headers=stack.admin()))


def test_coupon_fields_a_client_must_not_set_are_ignored(stack, api):
    coupon = json_ok(api.post("/api/v1/admin/coupons", headers=stack.admin(), json={
        "code": fresh_code(), "kind": "percent", "value": "5", "max_redemptions": 1, "redeemed_count": 1, "status": "used"}))
    assert coupon["redeemed_count"] == 0
    cart = check_cart(json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": BACKEND_1M, "quantity": 1}]})))
    assert json_ok(api.post(f"/api/v1/cart/{cart['token']}/coupon", json={"code": coupon["code"]}))["discount_amount"] == "74.95"


# --------------------------------------------------------------------------------------------
# sales


def test_create_sale_and_read_it_back(stack, api):
    slug = fresh_slug()
    sale = json_ok(api.post("/api/v1/admin/sales", headers=stack.admin(), json={
        "sale_slug": slug, "kind": "percent", "value": "15", "internship_ids": [BACKEND],
        "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}))
    assert sale == {"sale_slug": slug, "kind": "percent", "value": "15.00", "internship_ids": [BACKEND],
                    "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z", "active": True, "currency": "INR"}
    assert json_ok(api.get(f"/api/v1/sales/{slug}")) == sale
    cart = check_cart(json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": BACKEND_1M, "quantity": 1}], "sale_slug": slug})))
    assert cart["items"][0]["price"] == "1274.15"  # 1499.00 - 224.85


def test_sale_fields_a_client_must_not_set_are_ignored(stack, api):
    sale = json_ok(api.post("/api/v1/admin/sales", headers=stack.admin(), json={
        "sale_slug": fresh_slug(), "kind": "fixed", "value": "100", "starts_at": "2099-01-01T00:00:00Z", "active": True,
        "currency": "USD"}))
    assert set(sale) == SALE_FIELDS
    assert (sale["active"], sale["currency"], sale["value"], sale["internship_ids"]) == (False, "INR", "100.00", [])


def test_duplicate_sale_slug_is_409_1006(stack, api, expect_envelope):
    slug = fresh_slug()
    json_ok(api.post("/api/v1/admin/sales", json={"sale_slug": slug, "kind": "percent", "value": "5"}, headers=stack.admin()))
    expect_envelope(api.post("/api/v1/admin/sales", json={"sale_slug": slug, "kind": "fixed", "value": "100"},
                             headers=stack.admin()), 409, 1006)


def test_every_bad_sale_field_is_listed(stack, api, expect_envelope):
    error = expect_envelope(api.post("/api/v1/admin/sales", headers=stack.admin(), json={
        "sale_slug": "Bad Slug", "kind": "", "value": "", "internship_ids": ["x"], "starts_at": "soon"}), 400, 1000)
    assert fields_of(error) == {"sale_slug", "kind", "value", "internship_ids[0]", "starts_at"}


def test_sale_for_an_unknown_internship_is_1005(stack, api, expect_envelope):
    expect_envelope(api.post("/api/v1/admin/sales", headers=stack.admin(), json={
        "sale_slug": fresh_slug(), "kind": "percent", "value": "5", "internship_ids": [str(uuid.uuid4())]}), 404, 1005)


# --------------------------------------------------------------------------------------------
# internships


def test_create_internship_generates_ids_and_is_sellable(stack, api):
    internship = json_ok(api.post("/api/v1/admin/internships", headers=stack.admin(), json={
        "title": " Rust Systems ", "description": "Low-level work.",
        "plans": [{"period": {"value": 1, "unit": "month"}, "price": "999"},
                  {"period": {"value": 1, "unit": "year"}, "price": "9999.5", "currency": "USD"}]}))
    assert {"internship_id", "title", "plans"} <= set(internship)
    assert UUID_RE.match(internship["internship_id"]) and internship["title"] == "Rust Systems"
    assert [(p["period"], p["price"], p["currency"]) for p in internship["plans"]] == [
        ({"value": 1, "unit": "month"}, "999.00", "INR"), ({"value": 1, "unit": "year"}, "9999.50", "INR")]
    assert all(UUID_RE.match(p["plan_id"]) for p in internship["plans"])
    listed = {entry["internship_id"]: entry for entry in json_ok(api.get("/api/v1/internships"))["internships"]}
    assert listed[internship["internship_id"]]["plans"] == internship["plans"]
    yearly = internship["plans"][1]["plan_id"]
    cart = check_cart(json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": yearly, "quantity": 1}]})))
    assert (cart["items"][0]["period"], cart["subtotal"]) == ({"value": 1, "unit": "year"}, "9999.50")


def test_given_ids_are_kept_and_reuse_is_409_1006(stack, api, expect_envelope):
    internship_id, plan_id = str(uuid.uuid4()), str(uuid.uuid4())
    created = json_ok(api.post("/api/v1/admin/internships", headers=stack.admin(), json={
        "internship_id": internship_id, "title": "Go Services",
        "plans": [{"plan_id": plan_id, "period": {"value": 3, "unit": "month"}, "price": "2500"}]}))
    assert created["internship_id"] == internship_id and created["plans"][0]["plan_id"] == plan_id
    expect_envelope(api.post("/api/v1/admin/internships", headers=stack.admin(), json={
        "internship_id": internship_id, "title": "Again", "plans": [{"period": {"value": 3, "unit": "month"}, "price": "1"}]}), 409, 1006)
    expect_envelope(api.post("/api/v1/admin/internships", headers=stack.admin(), json={
        "title": "Plan reused", "plans": [{"plan_id": BACKEND_1M, "period": {"value": 3, "unit": "month"}, "price": "1"}]}), 409, 1006)


def test_every_bad_internship_field_is_listed(stack, api, expect_envelope):
    error = expect_envelope(api.post("/api/v1/admin/internships", headers=stack.admin(), json={
        "internship_id": "nope", "title": "  ",
        "plans": [{"period": {"value": 12, "unit": "month"}, "price": "999"},
                  {"period": {"value": 1, "unit": "year"}, "price": "999"},
                  {"period": {"value": 0, "unit": "week"}, "price": "-1"},
                  {"price": "10"}]}), 400, 1000)
    text = " | ".join(error["validation_messages"])
    for expected in ("internship_id", "title: required", "plans[1].period: same length as plans[0]", "plans[2].period.unit",
                     "plans[2].period.value", "plans[2].price", "plans[3].period: required"):
        assert expected in text, (expected, text)
    for count in (0, 7):
        error = expect_envelope(api.post("/api/v1/admin/internships", headers=stack.admin(), json={
            "title": "T", "plans": [{"period": {"value": n + 1, "unit": "month"}, "price": "1"} for n in range(count)]}), 400, 1000)
        assert "plans" in fields_of(error)


# --------------------------------------------------------------------------------------------
# exchange rates


def test_exchange_rate_is_used_by_the_next_estimate(stack, api):
    cart = check_cart(json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": BACKEND_1M, "quantity": 1}]})))
    admin = stack.admin()
    try:
        changed = json_ok(api.put("/api/v1/admin/exchange-rates/GBP", json={"rate": "0.02"}, headers=admin))
        assert set(changed) == {"currency", "rate", "updated_at"}
        assert (changed["currency"], changed["rate"]) == ("GBP", "0.02")
        timestamp(changed["updated_at"])
        estimate = check_estimate(json_ok(api.post("/api/v1/cart/estimate", json={
            "cart_token": cart["token"], "currency": "GBP", "billing": {"country": "GB"}})))
        assert (estimate["currency"], estimate["exchange_rate"], estimate["subtotal"], estimate["total"]) == ("GBP", "0.02", "29.98", "29.98")
        gbp_cart = check_cart(json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": BACKEND_1M, "quantity": 1}], "currency": "GBP"})))
        assert gbp_cart["items"][0]["price"] == "29.98"
    finally:
        restored = json_ok(api.put("/api/v1/admin/exchange-rates/GBP", json={"rate": GBP_SAMPLE_RATE}, headers=admin))
    assert restored["rate"] == GBP_SAMPLE_RATE
    estimate = check_estimate(json_ok(api.post("/api/v1/cart/estimate", json={"cart_token": cart["token"], "currency": "GBP"})))
    assert (estimate["exchange_rate"], estimate["subtotal"]) == (GBP_SAMPLE_RATE, "14.24")  # 1499 x 0.0095 = 14.2405


@pytest.mark.parametrize(("currency", "body", "fields"), [
    ("INR", {"rate": "1"}, {"currency"}),
    ("JPY", {"rate": "0.5"}, {"currency"}),
    ("EUR", {"rate": "0"}, {"rate"}),
    ("EUR", {"rate": "-0.5"}, {"rate"}),
    ("EUR", {"rate": "0.123456789"}, {"rate"}),
    ("EUR", {"rate": "1e-3"}, {"rate"}),
    ("XYZ", {}, {"currency", "rate"}),
])
def test_bad_exchange_rates_are_1000(stack, api, expect_envelope, currency, body, fields):
    error = expect_envelope(api.put(f"/api/v1/admin/exchange-rates/{currency}", json=body, headers=stack.admin()), 400, 1000)
    assert fields_of(error) == fields


def test_exchange_rate_currency_comes_from_the_path_only(stack, api, expect_envelope):
    admin = stack.admin()
    expect_envelope(api.put("/api/v1/admin/exchange-rates/GBP", json={"rate": "0.5", "currency": "USD"}, headers=admin), 400, 1000)
    expect_envelope(api.put("/api/v1/admin/exchange-rates/GBP", params={"currency": "USD"}, json={"rate": "0.5"}, headers=admin), 400, 1000)
    ignored = json_ok(api.put("/api/v1/admin/exchange-rates/GBP", json={"rate": GBP_SAMPLE_RATE, "updated_at": "2000-01-01T00:00:00Z"},
                              headers=admin))
    assert timestamp(ignored["updated_at"]).year > 2000
    for currency, rate in (("USD", "0.012"), ("GBP", GBP_SAMPLE_RATE)):  # neither changed
        cart = check_cart(json_ok(api.post("/api-proxy/api/cart", json={"currency": currency})))
        estimate = check_estimate(json_ok(api.post("/api/v1/cart/estimate", json={"cart_token": cart["token"]})))
        assert estimate["exchange_rate"] == rate


# --------------------------------------------------------------------------------------------
# dead letters (enrollment_svc; docs/API.md)


def test_dead_letters_list_for_an_admin(stack, api):
    body = json_ok(api.get("/api/v1/admin/dead-letters", headers=stack.admin()))
    assert set(body) == {"dead_letters"} and isinstance(body["dead_letters"], list)


def test_replaying_an_unknown_dead_letter_is_404_3201(stack, api, expect_envelope):
    """docs/API.md: 3201 dead letter not found."""
    expect_envelope(api.post(f"/api/v1/admin/dead-letters/{uuid.uuid4()}/replay", json={}, headers=stack.admin()), 404, 3201)
    error = expect_envelope(api.post("/api/v1/admin/dead-letters/nope/replay", json={}, headers=stack.admin()), 400, 1000)
    assert "dead_letter_id" in fields_of(error)
