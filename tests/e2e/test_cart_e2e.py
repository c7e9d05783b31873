"""The cart through the edge (CONTRACT.md "Cart", "Tax", "Currency", "Coupons and sales"): real Envoy,
real `python -m cart_svc`, the session's database with the sample catalog.

Every request is REST with the JSON bodies CONTRACT.md shows; every answer is checked for its
shape (snake_case, zero values printed, money as 2-place strings), its x-correlation-id and, for
errors, the envelope and code. Each route's refusals are listed route by route.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import jwt
import pytest

from tests.e2e.stack import UUID_RE, check_cart, check_estimate, json_ok, timestamp

pytestmark = pytest.mark.timeout(180)

BACKEND = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000001"
DESIGN = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000003"
CLOUD = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000004"  # no 1-month plan
BACKEND_1M = "7a1e0000-0000-4000-8000-000000000101"  # 1499.00
BACKEND_3M = "7a1e0000-0000-4000-8000-000000000103"  # 3999.00
BACKEND_6M = "7a1e0000-0000-4000-8000-000000000106"  # 6999.00
DATA_1M = "7a1e0000-0000-4000-8000-000000000201"  # 1299.00
DESIGN_1M = "7a1e0000-0000-4000-8000-000000000301"  # 999.00
SAMPLE_PLANS = [
    BACKEND_1M, BACKEND_3M, BACKEND_6M, DATA_1M, "7a1e0000-0000-4000-8000-000000000203", DESIGN_1M,
    "7a1e0000-0000-4000-8000-000000000303", "7a1e0000-0000-4000-8000-000000000306",
    "7a1e0000-0000-4000-8000-000000000403", "7a1e0000-0000-4000-8000-000000000406",
]


# --------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def api(stack):
    with stack.client() as client:
        yield client


def create(api, items=None, headers=None, **body) -> dict:
    if items is not None:
        body["items"] = items
    return check_cart(json_ok(api.post("/api-proxy/api/cart", json=body, headers=headers)))


def line(plan_id: str = BACKEND_1M, quantity: int = 1) -> dict:
    return {"plan_id": plan_id, "quantity": quantity}


def get(api, token: str, headers=None) -> dict:
    return check_cart(json_ok(api.get(f"/api/v1/cart/{token}", headers=headers)))


def item_of(cart: dict, plan_id: str) -> dict:
    return next(item for item in cart["items"] if item["plan_id"] == plan_id)


def messages(error: dict) -> str:
    assert error["validation_messages"] and all(isinstance(m, str) and m for m in error["validation_messages"]), error
    return " | ".join(error["validation_messages"])


def bad_token(stack, kind: str) -> str:
    settings = stack.settings
    claims = {"sub": str(uuid.uuid4()), "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "exp": 4102444800}
    if kind == "garbage":
        return "not-a-jwt"
    if kind == "expired":
        return stack.token(str(uuid.uuid4()), ttl_seconds=-60)
    if kind == "wrong-audience":
        return jwt.encode({**claims, "aud": "someone-else"}, settings.jwt_secret, algorithm="HS256")
    if kind == "wrong-issuer":
        return jwt.encode({**claims, "iss": "evil"}, settings.jwt_secret, algorithm="HS256")
    if kind == "wrong-secret":
        return jwt.encode(claims, "not-the-secret-" * 3, algorithm="HS256")
    if kind == "alg-none":
        return jwt.encode(claims, None, algorithm="none")
    if kind == "sub-not-uuid":
        return jwt.encode({**claims, "sub": "alice"}, settings.jwt_secret, algorithm="HS256")
    raise AssertionError(kind)


BAD_TOKENS = ["garbage", "expired", "wrong-audience", "wrong-issuer", "wrong-secret", "alg-none", "sub-not-uuid"]


@pytest.fixture(scope="module")
def coupon10(stack) -> str:
    return stack.new_coupon(kind="percent", value="10")["code"]


# The routes that take a cart token, as (method, path, body) for a cart, one of its items and a
# valid coupon code. auth/check is separate: it answers anyone (see its own tests).
def route_call(name: str, token: str, item_id: str, code: str) -> tuple[str, str, dict | None]:
    return {
        "get": ("GET", f"/api/v1/cart/{token}", None),
        "add_item": ("POST", f"/api/v1/cart/{token}/items", {"plan_id": DESIGN_1M, "quantity": 1}),
        "switch_plan": ("PUT", f"/api/v1/cart/{token}/plan/{BACKEND_3M}", {"item_id": item_id}),
        "remove_item": ("DELETE", f"/api/v1/cart/{token}/item/{item_id}", None),
        "estimate": ("POST", "/api/v1/cart/estimate", {"cart_token": token, "billing": {"country": "IN", "state": "KA"}}),
        "discounts": ("GET", f"/api/v1/cart/{token}/discounts", None),
        "apply_coupon": ("POST", f"/api/v1/cart/{token}/coupon", {"code": code}),
        "remove_coupon": ("DELETE", f"/api/v1/cart/{token}/coupon", None),
        "login": ("POST", f"/api/v1/cart/{token}/auth/login", {}),
    }[name]


TOKEN_ROUTES = ["get", "add_item", "switch_plan", "remove_item", "estimate", "discounts", "apply_coupon", "remove_coupon", "login"]
CHANGING_ROUTES = ["add_item", "switch_plan", "remove_item", "apply_coupon", "remove_coupon", "login"]


def send(api, method: str, path: str, body: dict | None, headers=None):
    return api.request(method, path, json=body, headers=headers)


# --------------------------------------------------------------------------------------------
# create


def test_create_guest_cart_by_plan_id(api):
    response = api.post("/api-proxy/api/cart", json={"items": [{"plan_id": BACKEND_1M, "quantity": 2}]})
    cart = check_cart(json_ok(response))
    assert UUID_RE.match(response.headers["x-correlation-id"])
    assert cart["status"] == "active" and cart["currency"] == "INR"
    # zero values are printed: a guest cart has "user_id": "" and no discount
    assert (cart["user_id"], cart["discount_code"], cart["discount_amount"], cart["device_id"], cart["sale_slug"]) == ("", "", "0.00", "", "")
    [item] = cart["items"]
    assert (item["plan_id"], item["internship_id"], item["title"]) == (BACKEND_1M, BACKEND, "Backend Engineering with Python")
    assert (item["price"], item["quantity"], item["period"]) == ("1499.00", 2, {"value": 1, "unit": "month"})
    # no billing yet: IGST 18 %
    assert (cart["subtotal"], cart["tax_rate"], cart["tax_amount"], cart["total"]) == ("2998.00", "18", "539.64", "3537.64")


def test_create_by_internship_and_period(api):
    cart = create(api, [{"internship_id": BACKEND, "period": {"value": 3, "unit": "month"}, "quantity": 1}])
    [item] = cart["items"]
    assert (item["plan_id"], item["price"], item["period"]) == (BACKEND_3M, "3999.00", {"value": 3, "unit": "month"})
    assert cart["total"] == "4718.82"  # 3999.00 + 719.82


def test_create_with_device_analytics_and_usd(api):
    cart = create(api, [line(BACKEND_1M, 1), line(DESIGN_1M, 2)], currency="USD", device_id="device-42",
                  analytics_data=[{"name": "utm_source", "value": "newsletter"}, {"name": "utm_campaign", "value": "spring"}])
    assert cart["currency"] == "USD" and cart["device_id"] == "device-42"
    # each unit price converted at 0.012 and rounded half-up: 1499 → 17.988 → 17.99; 999 → 11.988 → 11.99
    assert item_of(cart, BACKEND_1M)["price"] == "17.99" and item_of(cart, DESIGN_1M)["price"] == "11.99"
    assert cart["subtotal"] == "41.97"  # 17.99 + 2 x 11.99
    assert (cart["tax_amount"], cart["total"]) == ("7.55", "49.52")  # 41.97 x 18 % = 7.5546


def test_create_in_eur(api):
    cart = create(api, [line(BACKEND_1M, 3)], currency="EUR")
    assert (cart["currency"], cart["items"][0]["price"], cart["subtotal"]) == ("EUR", "16.49", "49.47")  # 1499 x 0.011 = 16.489


def test_empty_cart_is_a_draft_with_zero_totals_printed(api):
    cart = create(api)
    assert cart["status"] == "draft" and cart["items"] == []
    assert [cart[name] for name in ("subtotal", "discount_amount", "tax_amount", "total")] == ["0.00"] * 4


def test_user_cart_belongs_to_the_bearer(stack, api):
    user = str(uuid.uuid4())
    cart = create(api, [line()], headers=stack.bearer(user))
    assert cart["user_id"] == user
    assert get(api, cart["token"], stack.bearer(user)) == cart


def test_get_returns_the_cart_as_created_and_echoes_the_correlation_id(api):
    cart = create(api, [line(DATA_1M, 3)])
    response = api.get(f"/api/v1/cart/{cart['token']}", headers={"X-Correlation-ID": "cart-e2e-get-1"})
    assert check_cart(json_ok(response)) == cart
    assert response.headers["x-correlation-id"] == "cart-e2e-get-1"


def test_tokens_are_random_uuids(api):
    tokens = {create(api)["token"] for _ in range(5)}
    assert len(tokens) == 5 and all(uuid.UUID(token).version in (4, 7) for token in tokens)


# --------------------------------------------------------------------------------------------
# items


def test_add_item_adds_a_line_or_raises_the_quantity(api):
    cart = create(api, [line()])
    added = check_cart(json_ok(api.post(f"/api/v1/cart/{cart['token']}/items", json={"plan_id": DESIGN_1M, "quantity": 2})))
    assert {item["plan_id"]: item["quantity"] for item in added["items"]} == {BACKEND_1M: 1, DESIGN_1M: 2}
    assert added["subtotal"] == "3497.00" and added["token"] == cart["token"]
    again = check_cart(json_ok(api.post(f"/api/v1/cart/{cart['token']}/items", json={"plan_id": DESIGN_1M, "quantity": 3})))
    assert {item["plan_id"]: item["quantity"] for item in again["items"]} == {BACKEND_1M: 1, DESIGN_1M: 5}
    assert item_of(again, DESIGN_1M)["item_id"] == item_of(added, DESIGN_1M)["item_id"]
    assert timestamp(again["updated_at"]) >= timestamp(cart["updated_at"])


def test_add_item_by_internship_and_period(api):
    cart = create(api)
    added = check_cart(json_ok(api.post(f"/api/v1/cart/{cart['token']}/items",
                                         json={"internship_id": DESIGN, "period": {"value": 1, "unit": "month"}, "quantity": 1})))
    assert [item["plan_id"] for item in added["items"]] == [DESIGN_1M] and added["status"] == "active"


def test_switch_plan_with_item_id(api):
    cart = create(api, [line(BACKEND_1M), line(DESIGN_1M)])
    backend = item_of(cart, BACKEND_1M)
    switched = check_cart(json_ok(api.put(f"/api/v1/cart/{cart['token']}/plan/{BACKEND_6M}", json={"item_id": backend["item_id"]})))
    moved = item_of(switched, BACKEND_6M)
    assert moved["item_id"] == backend["item_id"] and moved["price"] == "6999.00" and moved["period"] == {"value": 6, "unit": "month"}
    assert {item["plan_id"] for item in switched["items"]} == {BACKEND_6M, DESIGN_1M}
    assert switched["subtotal"] == "7998.00"


def test_switch_plan_without_item_id_when_the_cart_has_one_item(api):
    cart = create(api, [line(BACKEND_1M, 2)])
    switched = check_cart(json_ok(api.put(f"/api/v1/cart/{cart['token']}/plan/{BACKEND_3M}", json={})))
    [item] = switched["items"]
    assert (item["plan_id"], item["quantity"], item["item_id"]) == (BACKEND_3M, 2, cart["items"][0]["item_id"])
    assert switched["subtotal"] == "7998.00"


def test_switch_plan_without_a_body(api):
    cart = create(api, [line(DESIGN_1M)])
    switched = check_cart(json_ok(api.put(f"/api/v1/cart/{cart['token']}/plan/7a1e0000-0000-4000-8000-000000000306")))
    assert [(item["plan_id"], item["price"]) for item in switched["items"]] == [("7a1e0000-0000-4000-8000-000000000306", "4799.00")]


def test_switch_plan_refusals(api, expect_envelope):
    cart = create(api, [line(BACKEND_1M), line(DESIGN_1M)])
    token, backend = cart["token"], item_of(cart, BACKEND_1M)["item_id"]
    no_item = expect_envelope(api.put(f"/api/v1/cart/{token}/plan/{BACKEND_3M}", json={}), 400, 1000)
    assert "item_id" in messages(no_item)
    other_internship = expect_envelope(api.put(f"/api/v1/cart/{token}/plan/{DATA_1M}", json={"item_id": backend}), 400, 1000)
    assert "plan_id" in messages(other_internship)
    same_plan = expect_envelope(api.put(f"/api/v1/cart/{token}/plan/{DESIGN_1M}", json={"item_id": backend}), 400, 1000)
    assert "plan_id" in messages(same_plan)
    assert get(api, token) == cart  # refused changes change nothing


def test_remove_item_and_the_last_one_makes_a_draft(api):
    cart = create(api, [line(BACKEND_1M), line(DESIGN_1M)])
    token = cart["token"]
    left = check_cart(json_ok(api.delete(f"/api/v1/cart/{token}/item/{item_of(cart, BACKEND_1M)['item_id']}")))
    assert [item["plan_id"] for item in left["items"]] == [DESIGN_1M] and left["subtotal"] == "999.00"
    empty = check_cart(json_ok(api.delete(f"/api/v1/cart/{token}/item/{item_of(cart, DESIGN_1M)['item_id']}")))
    assert empty["status"] == "draft" and empty["items"] == [] and empty["total"] == "0.00"


def test_quantity_bounds(api, expect_envelope):
    full = create(api, [line(BACKEND_1M, 10)])
    assert full["items"][0]["quantity"] == 10 and full["subtotal"] == "14990.00"
    over = expect_envelope(api.post(f"/api/v1/cart/{full['token']}/items", json=line(BACKEND_1M, 1)), 400, 1000)
    assert "quantity" in messages(over)
    assert check_cart(json_ok(api.post(f"/api/v1/cart/{full['token']}/items", json=line(DESIGN_1M, 10))))["items"][1]["quantity"] == 10
    for quantity in (0, -1, 11, 1000):
        created = expect_envelope(api.post("/api-proxy/api/cart", json={"items": [line(BACKEND_1M, quantity)]}), 400, 1000)
        assert "items[0].quantity" in messages(created)
        added = expect_envelope(api.post(f"/api/v1/cart/{full['token']}/items", json=line(DATA_1M, quantity)), 400, 1000)
        assert "quantity" in messages(added)
    missing = expect_envelope(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": BACKEND_1M}]}), 400, 1000)
    assert "items[0].quantity" in messages(missing)
    assert len(get(api, full["token"])["items"]) == 2


@pytest.fixture(scope="module")
def twenty_two_plans(stack) -> list[str]:
    extra = [stack.new_internship(months=range(1, 7), price="100.00", title=f"Lines {n}") for n in range(2)]
    return SAMPLE_PLANS + [plan["plan_id"] for internship in extra for plan in internship["plans"]]


def test_a_cart_holds_at_most_20_lines(api, expect_envelope, twenty_two_plans):
    plans = twenty_two_plans
    cart = create(api, [line(plan_id) for plan_id in plans[:20]])
    assert len(cart["items"]) == 20
    refused = expect_envelope(api.post(f"/api/v1/cart/{cart['token']}/items", json=line(plans[20])), 400, 1000)
    assert "20" in messages(refused)
    more_of_one = check_cart(json_ok(api.post(f"/api/v1/cart/{cart['token']}/items", json=line(plans[0], 2))))
    assert len(more_of_one["items"]) == 20 and item_of(more_of_one, plans[0])["quantity"] == 3
    too_many = expect_envelope(api.post("/api-proxy/api/cart", json={"items": [line(plan_id) for plan_id in plans[:21]]}), 400, 1000)
    assert "items" in messages(too_many)


# --------------------------------------------------------------------------------------------
# coupons, sales and discounts


def test_coupon_apply_and_remove(api, coupon10):
    cart = create(api, [line(BACKEND_1M)])
    applied = check_cart(json_ok(api.post(f"/api/v1/cart/{cart['token']}/coupon", json={"code": coupon10.lower()})))
    assert (applied["discount_code"], applied["discount_amount"]) == (coupon10, "149.90")
    assert (applied["tax_amount"], applied["total"]) == ("242.84", "1591.94")  # (1499 - 149.90) x 18 % = 242.838
    removed = check_cart(json_ok(api.delete(f"/api/v1/cart/{cart['token']}/coupon")))
    assert (removed["discount_code"], removed["discount_amount"], removed["total"]) == ("", "0.00", "1768.82")


def test_sale_is_inside_the_unit_prices(stack, api):
    sale = stack.new_sale(kind="percent", value="10", internship_ids=[BACKEND])
    cart = create(api, [line(BACKEND_1M), line(DESIGN_1M)], sale_slug=sale["sale_slug"])
    assert cart["sale_slug"] == sale["sale_slug"]
    assert item_of(cart, BACKEND_1M)["price"] == "1349.10" and item_of(cart, DESIGN_1M)["price"] == "999.00"
    assert (cart["subtotal"], cart["discount_amount"]) == ("2348.10", "0.00")


def test_a_discount_never_makes_a_total_negative(stack, api):
    big_sale = stack.new_sale(kind="fixed", value="2000", internship_ids=[DESIGN])["sale_slug"]
    free = create(api, [line(DESIGN_1M, 2), line(BACKEND_1M)], sale_slug=big_sale)
    assert item_of(free, DESIGN_1M)["price"] == "0.00" and free["subtotal"] == "1499.00"
    big_coupon = stack.new_coupon(kind="fixed", value="5000")["code"]
    cart = create(api, [line(DESIGN_1M)])
    applied = check_cart(json_ok(api.post(f"/api/v1/cart/{cart['token']}/coupon", json={"code": big_coupon})))
    assert (applied["discount_amount"], applied["tax_amount"], applied["total"]) == ("999.00", "0.00", "0.00")
    estimate = check_estimate(json_ok(api.post("/api/v1/cart/estimate", json={"cart_token": cart["token"], "billing": {"country": "IN", "state": "KA"}})))
    assert (estimate["taxable_amount"], estimate["tax_amount"], estimate["total"]) == ("0.00", "0.00", "0.00")
    assert [(t["name"], t["amount"]) for t in estimate["taxes"]] == [("CGST", "0.00"), ("SGST", "0.00")]


def test_unknown_sale_slug_is_refused(api, expect_envelope):
    error = expect_envelope(api.post("/api-proxy/api/cart", json={"items": [line()], "sale_slug": f"nope-{uuid.uuid4().hex[:6]}"}), 400, 1000)
    assert "sale_slug" in messages(error)


def test_discounts_say_which_apply_and_why_not(stack, api, coupon10):
    sale = stack.new_sale(kind="fixed", value="100", internship_ids=[BACKEND])
    future_sale = stack.new_sale(kind="percent", value="5", starts_at="2099-01-01T00:00:00Z")
    minimum = stack.new_coupon(min_subtotal="100000", listed=True)["code"]
    expired = stack.new_coupon(starts_at="2020-01-01T00:00:00Z", ends_at="2020-02-01T00:00:00Z", listed=True)["code"]
    elsewhere = stack.new_coupon(internship_ids=[DESIGN], listed=True)["code"]
    private = stack.new_coupon()["code"]  # not listed: never disclosed to a cart that has not applied it
    cart = create(api, [line(BACKEND_1M)], sale_slug=sale["sale_slug"])
    json_ok(api.post(f"/api/v1/cart/{cart['token']}/coupon", json={"code": coupon10}))
    body = json_ok(api.get(f"/api/v1/cart/{cart['token']}/discounts"))
    assert set(body) == {"discounts"}
    for entry in body["discounts"]:
        assert set(entry) == {"code", "description", "applicable", "reason"}, entry
        assert isinstance(entry["applicable"], bool) and isinstance(entry["reason"], str), entry
        assert entry["applicable"] == (entry["reason"] == ""), entry
    found = {entry["code"]: entry for entry in body["discounts"]}
    assert found[sale["sale_slug"]]["applicable"] is True
    assert (found[coupon10]["applicable"], found[coupon10]["reason"]) == (True, "")
    assert found[coupon10]["description"] == "10% off"
    assert found[minimum]["applicable"] is False and "minimum" in found[minimum]["reason"]
    assert found[expired]["applicable"] is False and "expired" in found[expired]["reason"]
    assert found[elsewhere]["applicable"] is False and "internship" in found[elsewhere]["reason"]
    assert private not in found
    later = create(api, [line(BACKEND_1M)], sale_slug=future_sale["sale_slug"])
    entry = {e["code"]: e for e in json_ok(api.get(f"/api/v1/cart/{later['token']}/discounts"))["discounts"]}[future_sale["sale_slug"]]
    assert entry["applicable"] is False and entry["reason"]


COUPON_CASES = {
    "below-minimum": ({"min_subtotal": "5000"}, "minimum"),
    "expired": ({"starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-02-01T00:00:00Z"}, "expired"),
    "not-started": ({"starts_at": "2099-01-01T00:00:00Z"}, "not valid yet"),
    "other-internship": ({"internship_ids": [DESIGN]}, "does not apply"),
    "limit-reached": ({"max_redemptions": 1}, "limit reached"),
}
UNUSABLE = "code: no coupon with this code can be used on this cart"


async def _refused_coupon(stack, case: str, *, listed: bool) -> str:
    fields, _ = COUPON_CASES[case]
    code = stack.new_coupon(**fields, listed=listed)["code"]
    if case == "limit-reached":
        assert await stack.execute("UPDATE cart.coupons SET redeemed_count = max_redemptions WHERE code = :code", code=code) == 1
    return code


@pytest.mark.parametrize("case", list(COUPON_CASES))
async def test_a_listed_coupon_that_does_not_apply_is_2004_with_its_reason(stack, api, expect_envelope, case):
    code = await _refused_coupon(stack, case, listed=True)
    cart = create(api, [line(BACKEND_1M)])
    error = expect_envelope(api.post(f"/api/v1/cart/{cart['token']}/coupon", json={"code": code}), 400, 2004)
    assert COUPON_CASES[case][1] in messages(error) and error["retryable"] is False
    assert get(api, cart["token"]) == cart


@pytest.mark.parametrize("case", ["unknown", *COUPON_CASES])
async def test_an_unknown_code_and_a_private_coupon_that_does_not_apply_are_refused_alike(
        stack, api, expect_envelope, case):
    code = f"NOPE{uuid.uuid4().hex[:8].upper()}" if case == "unknown" else await _refused_coupon(stack, case, listed=False)
    cart = create(api, [line(BACKEND_1M)])
    error = expect_envelope(api.post(f"/api/v1/cart/{cart['token']}/coupon", json={"code": code}), 400, 2004)
    assert error["validation_messages"] == [UNUSABLE] and error["retryable"] is False
    assert get(api, cart["token"]) == cart


def test_a_cart_that_tried_too_many_wrong_codes_may_try_none_until_the_window_ends(stack, api, expect_envelope):
    cart = create(api, [line(BACKEND_1M)])
    for _ in range(10):  # COUPON_ATTEMPTS_PER_CART's default
        expect_envelope(api.post(f"/api/v1/cart/{cart['token']}/coupon",
                                 json={"code": f"NOPE{uuid.uuid4().hex[:8].upper()}"}), 400, 2004)
    good = stack.new_coupon()["code"]
    error = expect_envelope(api.post(f"/api/v1/cart/{cart['token']}/coupon", json={"code": good}), 429, 429)
    assert "too many coupon codes" in error["message"]
    assert get(api, cart["token"]) == cart
    other = create(api, [line(BACKEND_1M)])  # the limit is the cart's
    assert json_ok(api.post(f"/api/v1/cart/{other['token']}/coupon", json={"code": good}))["discount_code"] == good


def test_bad_coupon_code_format_is_1000(api, expect_envelope):
    cart = create(api, [line()])
    for code in ("", "x", "no spaces", "a" * 51):
        error = expect_envelope(api.post(f"/api/v1/cart/{cart['token']}/coupon", json={"code": code}), 400, 1000)
        assert "code" in messages(error)


# --------------------------------------------------------------------------------------------
# estimate: the contract's tax table, rounded half-up per tax line


@pytest.fixture(scope="module")
def percent_coupon(stack) -> str:
    return stack.new_coupon(kind="percent", value="12.5")["code"]


@pytest.fixture(scope="module")
def fixed_coupon(stack) -> str:
    return stack.new_coupon(kind="fixed", value="100.50")["code"]


# 1499.00 less 12.5 % (187.375 → 187.38) = 1311.62: 9 % = 118.0458 → 118.05, 18 % = 236.0916 → 236.09
# 999.00 less 100.50 = 898.50: 9 % = 80.865 → 80.87 (half-up; half-even would say 80.86), 18 % = 161.73
TAX_CASES = {
    "same-state": ({"country": "IN", "state": "KA"}, [("CGST", "9"), ("SGST", "9")]),
    "other-state": ({"country": "IN", "state": "MH"}, [("IGST", "18")]),
    "india-no-state": ({"country": "IN"}, [("IGST", "18")]),
    "no-billing": (None, [("IGST", "18")]),
    "export": ({"country": "US"}, []),
    "export-with-region": ({"country": "GB", "state": "London"}, []),
}
EXPECTED = {
    "percent": ("1499.00", "187.38", "1311.62", {"CGST": "118.05", "SGST": "118.05", "IGST": "236.09"}),
    "fixed": ("999.00", "100.50", "898.50", {"CGST": "80.87", "SGST": "80.87", "IGST": "161.73"}),
}


@pytest.mark.parametrize("coupon_kind", ["percent", "fixed"])
@pytest.mark.parametrize("case", list(TAX_CASES))
def test_estimate_taxes_by_place_of_supply(api, percent_coupon, fixed_coupon, coupon_kind, case):
    plan, code = (BACKEND_1M, percent_coupon) if coupon_kind == "percent" else (DESIGN_1M, fixed_coupon)
    cart = create(api, [line(plan)])
    json_ok(api.post(f"/api/v1/cart/{cart['token']}/coupon", json={"code": code}))
    billing, taxes = TAX_CASES[case]
    body = {"cart_token": cart["token"]} | ({"billing": billing} if billing else {})
    estimate = check_estimate(json_ok(api.post("/api/v1/cart/estimate", json=body)))
    subtotal, discount, taxable, amounts = EXPECTED[coupon_kind]
    assert (estimate["cart_token"], estimate["currency"], estimate["exchange_rate"]) == (cart["token"], "INR", "1")
    assert (estimate["subtotal"], estimate["discount_amount"], estimate["taxable_amount"]) == (subtotal, discount, taxable)
    [discount_line] = estimate["discounts"]
    assert (discount_line["code"], discount_line["amount"]) == (code, discount) and discount_line["description"]
    assert [(t["name"], t["rate"], t["amount"]) for t in estimate["taxes"]] == [(name, rate, amounts[name]) for name, rate in taxes]
    tax = sum((Decimal(amounts[name]) for name, _ in taxes), Decimal("0.00"))
    assert estimate["tax_amount"] == f"{tax:.2f}"  # "0.00" printed for an export
    assert estimate["total"] == f"{Decimal(taxable) + tax:.2f}"
    assert timestamp(estimate["expires_at"]) > timestamp(cart["updated_at"])


def test_estimate_in_another_currency_uses_the_rate(api):
    cart = create(api, [line(BACKEND_1M), line(DESIGN_1M, 2)])
    estimate = check_estimate(json_ok(api.post("/api/v1/cart/estimate", json={
        "cart_token": cart["token"], "currency": "USD", "billing": {"country": "IN", "state": "KA"}})))
    assert (estimate["currency"], estimate["exchange_rate"]) == ("USD", "0.012")
    assert estimate["subtotal"] == "41.97"  # 17.99 + 2 x 11.99 (per unit, half-up)
    assert [(t["name"], t["amount"]) for t in estimate["taxes"]] == [("CGST", "3.78"), ("SGST", "3.78")]  # 3.7773
    assert estimate["total"] == "49.53"
    assert get(api, cart["token"])["currency"] == "INR"  # an estimate changes nothing


def test_estimate_validation_lists_every_field(api, expect_envelope):
    error = expect_envelope(api.post("/api/v1/cart/estimate", json={
        "cart_token": "not-a-token", "billing": {"country": "IN", "state": "ZZ"}, "currency": "XYZ"}), 400, 1000)
    text = messages(error)
    for field in ("cart_token", "billing.state", "currency"):
        assert field in text, text
    error = expect_envelope(api.post("/api/v1/cart/estimate", json={"billing": {"country": "India"}}), 400, 1000)
    assert "cart_token" in messages(error) and "billing.country" in messages(error)


# --------------------------------------------------------------------------------------------
# auth/check and auth/login


def test_auth_check_on_a_guest_cart(stack, api):
    cart = create(api, [line()])
    anonymous = json_ok(api.post(f"/api/v1/cart/{cart['token']}/auth/check", json={}))
    assert anonymous == {"authenticated": False, "user_id": "", "owns_cart": False, "cart_token": cart["token"]}
    user = str(uuid.uuid4())
    known = json_ok(api.post(f"/api/v1/cart/{cart['token']}/auth/check", json={}, headers=stack.bearer(user)))
    assert set(known) == {"authenticated", "user_id", "owns_cart", "cart_token"}
    assert (known["authenticated"], known["user_id"], known["cart_token"]) == (True, user, cart["token"])
    assert known["owns_cart"] is False  # a guest cart is nobody's until auth/login claims it
    assert get(api, cart["token"])["user_id"] == ""  # checking claims nothing


def test_auth_check_on_a_users_cart_tells_only_the_caller_about_itself(stack, api):
    owner, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    cart = create(api, [line()], headers=stack.bearer(owner))
    path = f"/api/v1/cart/{cart['token']}/auth/check"
    assert json_ok(api.post(path, json={}, headers=stack.bearer(owner))) == {
        "authenticated": True, "user_id": owner, "owns_cart": True, "cart_token": cart["token"]}
    assert json_ok(api.post(path, json={}, headers=stack.bearer(stranger))) == {
        "authenticated": True, "user_id": stranger, "owns_cart": False, "cart_token": cart["token"]}
    assert json_ok(api.post(path, json={})) == {"authenticated": False, "user_id": "", "owns_cart": False, "cart_token": cart["token"]}


def test_auth_check_refusals(stack, api, expect_envelope):
    expect_envelope(api.post(f"/api/v1/cart/{uuid.uuid4()}/auth/check", json={}), 404, 1001)
    assert "token" in messages(expect_envelope(api.post("/api/v1/cart/nope/auth/check", json={}), 400, 1000))
    cart = create(api, [line()])
    expect_envelope(api.post(f"/api/v1/cart/{cart['token']}/auth/check", json={}, headers={"Authorization": "Bearer x"}), 401, 1101)


def test_login_claims_a_guest_cart(stack, api, expect_envelope):
    user, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    cart = create(api, [line()])
    path = f"/api/v1/cart/{cart['token']}/auth/login"
    expect_envelope(api.post(path, json={}), 401, 1101)  # a bearer token is required
    claimed = check_cart(json_ok(api.post(path, json={}, headers=stack.bearer(user))))
    assert (claimed["token"], claimed["user_id"], claimed["status"]) == (cart["token"], user, "active")
    assert claimed["items"] == cart["items"]
    again = check_cart(json_ok(api.post(path, json={}, headers=stack.bearer(user))))  # logging in twice is harmless
    assert again["user_id"] == user and again["items"] == cart["items"]
    # from now on the cart is the user's
    expect_envelope(api.get(f"/api/v1/cart/{cart['token']}"), 401, 1101)
    expect_envelope(api.get(f"/api/v1/cart/{cart['token']}", headers=stack.bearer(stranger)), 403, 1102)
    expect_envelope(api.post(path, json={}, headers=stack.bearer(stranger)), 403, 1102)
    assert get(api, cart["token"], stack.bearer(user))["user_id"] == user


def test_login_merges_the_users_open_cart(stack, api):
    user = str(uuid.uuid4())
    me = stack.bearer(user)
    small, large = stack.new_coupon(value="5")["code"], stack.new_coupon(value="20")["code"]
    mine = create(api, [line(BACKEND_1M, 9)], headers=me)
    json_ok(api.post(f"/api/v1/cart/{mine['token']}/coupon", json={"code": small}, headers=me))
    guest = create(api, [line(BACKEND_1M, 3), line(DESIGN_1M, 1)])
    json_ok(api.post(f"/api/v1/cart/{guest['token']}/coupon", json={"code": large}))
    merged = check_cart(json_ok(api.post(f"/api/v1/cart/{guest['token']}/auth/login", json={}, headers=me)))
    assert (merged["token"], merged["user_id"], merged["status"]) == (guest["token"], user, "active")
    assert {item["plan_id"]: item["quantity"] for item in merged["items"]} == {BACKEND_1M: 10, DESIGN_1M: 1}  # 9 + 3, capped
    assert merged["discount_code"] == large  # the larger valid discount stays
    assert merged["subtotal"] == "15989.00" and merged["discount_amount"] == "3197.80"
    closed = get(api, mine["token"], me)
    assert closed["status"] == "expired"


# --------------------------------------------------------------------------------------------
# every refusal, route by route


@pytest.mark.parametrize("route", TOKEN_ROUTES)
def test_unknown_cart_is_1001(stack, api, expect_envelope, coupon10, route):
    method, path, body = route_call(route, str(uuid.uuid4()), str(uuid.uuid4()), coupon10)
    error = expect_envelope(send(api, method, path, body, stack.bearer() if route == "login" else None), 404, 1001)
    assert error["suggested_action"] and error["retryable"] is False


@pytest.mark.parametrize("route", TOKEN_ROUTES + ["auth_check"])
def test_malformed_cart_token_is_1000(stack, api, expect_envelope, coupon10, route):
    if route == "auth_check":
        method, path, body = "POST", "/api/v1/cart/not-a-uuid/auth/check", {}
    else:
        method, path, body = route_call(route, "not-a-uuid", str(uuid.uuid4()), coupon10)
    error = expect_envelope(send(api, method, path, body, stack.bearer() if route == "login" else None), 400, 1000)
    assert ("cart_token" if route == "estimate" else "token") in messages(error)


def test_create_validation_lists_every_bad_field(api, expect_envelope):
    error = expect_envelope(api.post("/api-proxy/api/cart", json={
        "items": [
            {"plan_id": "not-a-plan", "quantity": 0},
            {"quantity": 1},
            {"internship_id": BACKEND, "period": {"value": 0, "unit": "week"}, "quantity": 1},
            {"plan_id": BACKEND_1M, "internship_id": BACKEND, "quantity": 1},
        ],
        "currency": "XYZ",
        "sale_slug": "Bad Slug!",
        "device_id": "x" * 300,
        "analytics_data": [{"name": "", "value": "x"}],
    }), 400, 1000)
    text = messages(error)
    for field in ("items[0].plan_id", "items[0].quantity", "items[1]", "items[2].period.unit", "items[2].period.value", "items[3]",
                  "currency", "sale_slug", "device_id", "analytics_data[0].name"):
        assert field in text, (field, text)


def test_control_characters_in_any_text_field_are_refused_before_anything_else(api, expect_envelope):
    # checked for every RPC before its use case runs (common/interceptors.py): these are listed alone
    error = expect_envelope(api.post("/api-proxy/api/cart", json={
        "items": [{"plan_id": "not-a-plan", "quantity": 0}],
        "device_id": "bad\u0001device", "analytics_data": [{"name": "utm\u001b", "value": "x\u0000"}],
    }), 400, 1000)
    assert error["validation_messages"] == [
        "device_id: must not contain control characters",
        "analytics_data[0].name: must not contain control characters",
        "analytics_data[0].value: must not contain control characters",
    ]


def test_add_item_validation_lists_every_bad_field(api, expect_envelope):
    cart = create(api, [line()])
    error = expect_envelope(api.post(f"/api/v1/cart/{cart['token']}/items", json={"plan_id": "nope", "quantity": 11}), 400, 1000)
    text = messages(error)
    assert "plan_id" in text and "quantity" in text
    error = expect_envelope(api.post(f"/api/v1/cart/{cart['token']}/items", json={"internship_id": BACKEND, "quantity": 1}), 400, 1000)
    assert "period" in messages(error)
    assert get(api, cart["token"]) == cart


def test_switch_and_remove_validation_lists_every_bad_field(api, expect_envelope):
    error = expect_envelope(api.put("/api/v1/cart/bad-token/plan/bad-plan", json={"item_id": "bad-item"}), 400, 1000)
    text = messages(error)
    for field in ("token", "plan_id", "item_id"):
        assert field in text, text
    error = expect_envelope(api.delete("/api/v1/cart/bad-token/item/bad-item"), 400, 1000)
    assert "token" in messages(error) and "item_id" in messages(error)


@pytest.mark.parametrize("case", ["create-unknown-plan", "create-no-such-period", "create-unknown-internship", "add-unknown-plan",
                                  "switch-unknown-plan", "switch-unknown-item", "remove-unknown-item"])
def test_unknown_plan_or_item_is_1005(api, expect_envelope, case):
    cart = create(api, [line(BACKEND_1M)])
    token, item_id, stranger = cart["token"], cart["items"][0]["item_id"], str(uuid.uuid4())
    method, path, body = {
        "create-unknown-plan": ("POST", "/api-proxy/api/cart", {"items": [line(stranger)]}),
        "create-no-such-period": ("POST", "/api-proxy/api/cart", {"items": [{"internship_id": CLOUD, "period": {"value": 1, "unit": "month"}, "quantity": 1}]}),
        "create-unknown-internship": ("POST", "/api-proxy/api/cart", {"items": [{"internship_id": stranger, "period": {"value": 1, "unit": "month"}, "quantity": 1}]}),
        "add-unknown-plan": ("POST", f"/api/v1/cart/{token}/items", line(stranger)),
        "switch-unknown-plan": ("PUT", f"/api/v1/cart/{token}/plan/{stranger}", {"item_id": item_id}),
        "switch-unknown-item": ("PUT", f"/api/v1/cart/{token}/plan/{BACKEND_3M}", {"item_id": stranger}),
        "remove-unknown-item": ("DELETE", f"/api/v1/cart/{token}/item/{stranger}", None),
    }[case]
    expect_envelope(send(api, method, path, body), 404, 1005)
    assert get(api, token) == cart


@pytest.mark.parametrize("route", CHANGING_ROUTES)
async def test_expired_cart_refuses_changes_with_1002(stack, api, expect_envelope, coupon10, route):
    cart = create(api, [line(BACKEND_1M)])
    await stack.expire_cart(cart["token"])
    method, path, body = route_call(route, cart["token"], cart["items"][0]["item_id"], coupon10)
    error = expect_envelope(send(api, method, path, body, stack.bearer() if route == "login" else None), 410, 1002)
    assert error["suggested_action"]
    after = get(api, cart["token"])
    assert after["status"] == "expired" and after["items"] == cart["items"] and after["discount_code"] == "" and after["user_id"] == ""


@pytest.mark.parametrize("route", CHANGING_ROUTES)
async def test_converted_cart_refuses_changes_with_1003(stack, api, expect_envelope, coupon10, route):
    cart = create(api, [line(BACKEND_1M)])
    await stack.convert_cart(cart["token"])
    method, path, body = route_call(route, cart["token"], cart["items"][0]["item_id"], coupon10)
    expect_envelope(send(api, method, path, body, stack.bearer() if route == "login" else None), 409, 1003)
    after = get(api, cart["token"])
    assert after["status"] == "converted" and after["items"] == cart["items"] and after["discount_code"] == "" and after["user_id"] == ""


@pytest.fixture(scope="module")
def users_cart(stack, api):
    owner = str(uuid.uuid4())
    cart = create(api, [line(BACKEND_1M), line(DESIGN_1M)], headers=stack.bearer(owner))
    return owner, cart


@pytest.mark.parametrize("route", TOKEN_ROUTES)
@pytest.mark.parametrize("who", ["anonymous", "another-user", "another-admin"])
def test_a_users_cart_is_only_for_that_user(stack, api, expect_envelope, coupon10, users_cart, route, who):
    """OWASP API1: the decision is on the cart as stored, whatever the caller sends."""
    owner, cart = users_cart
    method, path, body = route_call(route, cart["token"], item_of(cart, BACKEND_1M)["item_id"], coupon10)
    headers = {"anonymous": None, "another-user": stack.bearer(), "another-admin": stack.admin()}[who]
    response = send(api, method, path, body, headers)
    if who == "anonymous":
        expect_envelope(response, 401, 1101)
    else:
        expect_envelope(response, 403, 1102)
    assert owner not in response.text and "Backend Engineering" not in response.text  # nothing of the cart leaks
    assert get(api, cart["token"], stack.bearer(owner)) == cart  # nothing changed


@pytest.mark.parametrize("route", ["get", "estimate", "discounts"])
def test_the_owner_may_read_their_cart(stack, api, coupon10, users_cart, route):
    owner, cart = users_cart
    method, path, body = route_call(route, cart["token"], item_of(cart, BACKEND_1M)["item_id"], coupon10)
    json_ok(send(api, method, path, body, stack.bearer(owner)))


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_invalid_bearer_token_is_401_even_where_a_guest_may_call(stack, api, expect_envelope, kind):
    headers = {"Authorization": f"Bearer {bad_token(stack, kind)}"}
    guest = create(api, [line()])
    for method, path, body in [
        ("POST", "/api-proxy/api/cart", {"items": [line()]}),
        ("GET", f"/api/v1/cart/{guest['token']}", None),
        ("POST", f"/api/v1/cart/{guest['token']}/items", line(DESIGN_1M)),
        ("POST", f"/api/v1/cart/{guest['token']}/auth/login", {}),
        ("POST", "/api/v1/cart/estimate", {"cart_token": guest["token"]}),
    ]:
        error = expect_envelope(send(api, method, path, body, headers), 401, 1101)
        assert error["suggested_action"]
    assert get(api, guest["token"]) == guest  # never treated as a guest, never claimed


def test_non_bearer_authorization_is_401(api, expect_envelope):
    guest = create(api, [line()])
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "token abc", "Bearer a b"):
        expect_envelope(api.get(f"/api/v1/cart/{guest['token']}", headers={"Authorization": value}), 401, 1101)


# --------------------------------------------------------------------------------------------
# what a client cannot smuggle in


def test_query_parameter_cannot_override_the_path_token(stack, api, expect_envelope, users_cart):
    """GET /api/v1/cart/{A}?token={B} must not read B (nor change it, on the other routes)."""
    owner, victim = users_cart
    mine = create(api, [line(DATA_1M)])
    attempts = [
        ("GET", f"/api/v1/cart/{mine['token']}", {"token": victim["token"]}, None),
        ("GET", f"/api/v1/cart/{mine['token']}/discounts", {"token": victim["token"]}, None),
        ("POST", f"/api/v1/cart/{mine['token']}/items", {"token": victim["token"]}, line(DESIGN_1M)),
        ("DELETE", f"/api/v1/cart/{mine['token']}/coupon", {"token": victim["token"]}, None),
        ("POST", "/api/v1/cart/estimate", {"cart_token": victim["token"]}, {"cart_token": mine["token"]}),
        ("POST", "/api/v1/cart/estimate", {"cartToken": victim["token"]}, {"cart_token": mine["token"]}),
        ("POST", "/api/v1/cart/estimate", {"cartToken": victim["token"]}, {}),  # the body leaves it out
        ("GET", f"/api/v1/cart/{mine['token']}", {"Token": victim["token"]}, None),
    ]
    for method, path, params, body in attempts:
        response = api.request(method, path, params=params, json=body)
        assert owner not in response.text and "Design" not in response.text  # nothing of B leaks
        error = expect_envelope(response, 400, 1000)
        assert messages(error)
    assert get(api, victim["token"], stack.bearer(owner)) == victim
    assert get(api, mine["token"]) == mine


def test_a_body_token_cannot_override_the_path_token(stack, api, expect_envelope, users_cart):
    """The edge refuses a body field that collides with a path field (edge/README.md)."""
    owner, victim = users_cart
    mine = create(api, [line(DATA_1M)])
    for method, path, body in [
        ("POST", f"/api/v1/cart/{mine['token']}/items", {**line(DESIGN_1M), "token": victim["token"]}),
        ("POST", f"/api/v1/cart/{mine['token']}/coupon", {"code": "ANYCODE", "token": victim["token"]}),
        ("PUT", f"/api/v1/cart/{mine['token']}/plan/{BACKEND_3M}", {"token": victim["token"]}),
    ]:
        error = expect_envelope(send(api, method, path, body), 400, 1000)
        assert "token" in messages(error)
    assert get(api, victim["token"], stack.bearer(owner)) == victim
    assert get(api, mine["token"]) == mine


MASS_ASSIGNMENT = {"total": "0.01", "subtotal": "0.01", "status": "converted", "price": "1.00", "user_id": str(uuid.uuid4()),
                   "discount_amount": "1499.00", "tax_amount": "0.00", "token": str(uuid.uuid4())}


def test_mass_assignment_on_create_changes_nothing(api):
    """Fields a request message does not have are ignored by the edge: the result is computed."""
    for field, value in MASS_ASSIGNMENT.items():
        cart = create(api, [line(BACKEND_1M, 2)], **{field: value})
        assert (cart["subtotal"], cart["total"], cart["status"], cart["user_id"]) == ("2998.00", "3537.64", "active", "")
        assert cart["token"] != value
        item = check_cart(json_ok(api.post("/api-proxy/api/cart", json={"items": [{**line(BACKEND_1M, 2), field: value}]})))
        assert item["items"][0]["price"] == "1499.00" and item["total"] == "3537.64" and item["user_id"] == ""


def test_mass_assignment_on_changes_changes_nothing(api, coupon10):
    cart = create(api, [line(BACKEND_1M)])
    token = cart["token"]
    for field, value in MASS_ASSIGNMENT.items():
        if field == "token":
            continue  # the path field: see test_a_body_token_cannot_override_the_path_token
        added = check_cart(json_ok(api.post(f"/api/v1/cart/{token}/items", json={**line(DESIGN_1M), field: value})))
        assert item_of(added, DESIGN_1M)["price"] == "999.00" and added["status"] == "active" and added["user_id"] == ""
        json_ok(api.delete(f"/api/v1/cart/{token}/item/{item_of(added, DESIGN_1M)['item_id']}"))
        couponed = check_cart(json_ok(api.post(f"/api/v1/cart/{token}/coupon", json={"code": coupon10, field: value})))
        assert (couponed["discount_amount"], couponed["total"]) == ("149.90", "1591.94")
        estimate = check_estimate(json_ok(api.post("/api/v1/cart/estimate", json={"cart_token": token, field: value})))
        assert (estimate["subtotal"], estimate["discount_amount"], estimate["total"]) == ("1499.00", "149.90", "1591.94")
        login_free = json_ok(api.post(f"/api/v1/cart/{token}/auth/check", json={field: value}))
        assert login_free["user_id"] == "" and login_free["authenticated"] is False
    after = get(api, token)
    assert [item["plan_id"] for item in after["items"]] == [BACKEND_1M]
    assert (after["subtotal"], after["discount_amount"], after["total"], after["status"], after["user_id"]) == (
        "1499.00", "149.90", "1591.94", "active", "")
