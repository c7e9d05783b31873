"""The catalog through the edge (CONTRACT.md "Catalog"): real Envoy + real cart_svc + the session's
database with the sample catalog."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from cart_svc.seed import SAMPLE_INTERNSHIPS
from tests.e2e.stack import UUID_RE, json_ok, money, timestamp

pytestmark = pytest.mark.timeout(120)

BACKEND = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000001"
DESIGN = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000003"
SALE_FIELDS = {"sale_slug", "kind", "value", "internship_ids", "starts_at", "ends_at", "active", "currency"}


@pytest.fixture(scope="module")
def api(stack):
    with stack.client() as client:
        yield client


def test_internships_lists_the_sample_catalog(api):
    response = api.get("/api/v1/internships")
    body = json_ok(response)
    assert set(body) == {"internships"}
    listed = {entry["internship_id"]: entry for entry in body["internships"]}
    sample = {internship_id: (title, plans) for internship_id, title, _, plans in SAMPLE_INTERNSHIPS}
    assert len(sample) >= 4 and set(sample) <= set(listed)  # other tests add internships of their own
    for internship_id, (title, plans) in sample.items():
        entry = listed[internship_id]
        assert {"internship_id", "title", "plans"} <= set(entry), entry
        assert entry["title"] == title
        assert 2 <= len(entry["plans"]) <= 3, entry
        got = {plan["plan_id"]: plan for plan in entry["plans"]}
        assert set(got) == {plan_id for plan_id, _, _ in plans}
        for plan_id, months, price in plans:
            plan = got[plan_id]
            assert set(plan) == {"plan_id", "period", "price", "currency"}, plan
            assert plan["period"] == {"value": months, "unit": "month"}, plan
            assert plan["currency"] == "INR"
            assert plan["price"] == price and money(plan["price"]) > 0, plan
    for entry in body["internships"]:
        assert UUID_RE.match(entry["internship_id"]), entry
        for plan in entry["plans"]:
            assert UUID_RE.match(plan["plan_id"]) and plan["period"]["unit"] in ("month", "year"), plan
            assert plan["currency"] == "INR"
            money(plan["price"])


def test_internships_sends_a_new_correlation_id_or_echoes_the_callers(api):
    first, second = api.get("/api/v1/internships"), api.get("/api/v1/internships")
    assert UUID_RE.match(first.headers["x-correlation-id"]) and first.headers["x-correlation-id"] != second.headers["x-correlation-id"]
    mine = f"catalog-{uuid.uuid4()}"
    assert api.get("/api/v1/internships", headers={"X-Correlation-ID": mine}).headers["x-correlation-id"] == mine


def test_sale_created_by_an_admin_is_readable_by_slug(stack, api):
    created = stack.new_sale(kind="percent", value="15", internship_ids=[BACKEND, DESIGN], ends_at="2099-01-01T00:00:00Z")
    sale = json_ok(api.get(f"/api/v1/sales/{created['sale_slug']}"))
    assert set(sale) == SALE_FIELDS, sale
    assert sale == created
    assert sale["kind"] == "percent" and sale["value"] == "15.00" and sale["currency"] == "INR"
    assert sorted(sale["internship_ids"]) == sorted([BACKEND, DESIGN])
    assert sale["active"] is True
    assert sale["starts_at"] == ""  # no start: zero value still printed
    assert timestamp(sale["ends_at"]).year == 2099


def test_sale_zero_values_are_printed(stack, api):
    """A future fixed sale for every internship: active false, internship_ids [] are still there."""
    created = stack.new_sale(kind="fixed", value="500", starts_at="2099-01-01T00:00:00Z")
    sale = json_ok(api.get(f"/api/v1/sales/{created['sale_slug']}"))
    assert set(sale) == SALE_FIELDS, sale
    assert (sale["active"], sale["internship_ids"], sale["ends_at"]) == (False, [], "")
    assert sale["kind"] == "fixed" and money(sale["value"]) == Decimal("500.00")
    assert timestamp(sale["starts_at"]).year == 2099


@pytest.mark.parametrize("slug", ["no-such-sale", f"gone-{uuid.uuid4().hex[:8]}"])
def test_unknown_sale_is_404_1005(api, expect_envelope, slug):
    error = expect_envelope(api.get(f"/api/v1/sales/{slug}"), 404, 1005)
    assert error["retryable"] is False and error["suggested_action"]


def test_catalog_is_public_but_a_bad_token_is_still_401(stack, api, expect_envelope):
    assert json_ok(api.get("/api/v1/internships", headers=stack.bearer()))["internships"]
    expect_envelope(api.get("/api/v1/internships", headers={"Authorization": "Bearer not-a-jwt"}), 401, 1101)


# --------------------------------------------------------------------------------------------
# Caching (CONTRACT.md additions "Catalog caching")


def test_the_catalog_carries_an_etag_and_a_public_max_age_and_a_current_etag_gets_304(api):
    first = api.get("/api/v1/internships")
    etag = first.headers["etag"]
    assert first.status_code == 200 and etag.startswith('"') and etag.endswith('"') and len(etag) == 34
    assert first.headers["cache-control"] == "public, max-age=60"
    again = api.get("/api/v1/internships", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert api.get("/api/v1/internships", headers={"If-None-Match": f'W/{etag}, "other"'}).status_code == 304
    stale = api.get("/api/v1/internships", headers={"If-None-Match": '"not-the-current-one"'})
    assert stale.status_code == 200 and stale.json() == first.json() and stale.headers["etag"] == etag


def test_an_admin_change_is_seen_at_once_with_a_new_etag(stack, api):
    before = api.get("/api/v1/internships")
    created = stack.new_internship((3,), "2999.00")
    after = api.get("/api/v1/internships", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert created["internship_id"] in {entry["internship_id"] for entry in after.json()["internships"]}


def test_a_sale_carries_an_etag_and_304_and_a_missing_one_is_still_404(stack, api, expect_envelope):
    sale = stack.new_sale()
    first = api.get(f"/api/v1/sales/{sale['sale_slug']}")
    assert first.status_code == 200 and first.headers["cache-control"] == "public, max-age=60"
    again = api.get(f"/api/v1/sales/{sale['sale_slug']}", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    expect_envelope(api.get("/api/v1/sales/no-such-sale-here", headers={"If-None-Match": "*"}), 404, 1005)
