from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from cart_svc.domain.coupons import Coupon, CouponReason
from cart_svc.domain.currency import INR, ExchangeRate
from cart_svc.domain.lines import LineToPrice
from cart_svc.domain.pricing import DiscountLine, PriceBreakdown, price_cart
from cart_svc.domain.sales import Sale
from cart_svc.domain.tax import Billing, TaxLine
from common.money import format_amount, from_minor_units

PROPERTY = settings(max_examples=300, deadline=None, database=None)
D = Decimal
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DATA = LineToPrice("data", "data-3m", D("1499.00"), 2)
WEB = LineToPrice("web", "web-1m", D("999.99"), 1)


def test_worked_example_intra_state() -> None:
    b = price_cart(
        [DATA, WEB],
        INR,
        now=NOW,
        sale=Sale("diwali", "percent", D("10"), frozenset({"data"})),
        coupon=Coupon("WEB200", "fixed", D("200.00"), internship_ids=frozenset({"web"})),
        billing=Billing("IN", "KA"),
    )
    assert [(line.unit_price, line.line_total) for line in b.lines] == [
        (D("1349.10"), D("2698.20")),
        (D("999.99"), D("999.99")),
    ]
    assert b.subtotal == D("3698.19")  # the sale is already inside the subtotal …
    assert b.discounts == (DiscountLine("WEB200", "200.00 INR off", D("200.00")),)  # … and not listed again
    assert (b.discount_amount, b.taxable_amount) == (D("200.00"), D("3498.19"))
    assert b.taxes == (TaxLine("CGST", D("9"), D("314.84")), TaxLine("SGST", D("9"), D("314.84")))  # 314.8371
    assert (b.tax_amount, b.total, b.tax_rate) == (D("629.68"), D("4127.87"), D("18"))
    assert (b.sale_slug, b.sale_savings) == ("diwali", D("299.80"))
    assert (b.currency, b.exchange_rate) == ("INR", D("1"))


def test_usd_converts_each_unit_then_sums() -> None:
    b = price_cart(
        [LineToPrice("data", "p", D("1499.00"), 3)], ExchangeRate("USD", D("0.012")), now=NOW, billing=Billing("US")
    )
    assert b.subtotal == D("53.97")  # 3 x 17.99; converting 4497.00 at once would give 53.96
    assert (b.taxes, b.tax_amount, b.tax_rate, b.total) == ((), D("0.00"), D("0"), D("53.97"))


def test_coupon_that_does_not_apply_is_left_out_and_explained() -> None:
    b = price_cart([WEB], INR, now=NOW, coupon=Coupon("BIG", "percent", D("10"), min_subtotal=D("5000.00")))
    assert (b.discounts, b.discount_amount, b.taxable_amount) == ((), D("0.00"), D("999.99"))
    assert b.coupon_verdict is not None and b.coupon_verdict.reasons == (CouponReason.BELOW_MINIMUM,)
    assert b.taxes == (TaxLine("IGST", D("18"), D("180.00")),)


def test_full_discount_leaves_nothing_to_tax() -> None:
    b = price_cart([DATA], INR, now=NOW, coupon=Coupon("FREE", "percent", D("100")))
    assert (b.taxable_amount, b.tax_amount, b.total) == (D("0.00"), D("0.00"), D("0.00"))


def test_empty_cart_and_closed_sale() -> None:
    b = price_cart([], INR, now=NOW, sale=Sale("old", "percent", D("50"), ends_at=NOW))
    assert [format_amount(x) for x in (b.subtotal, b.discount_amount, b.tax_amount, b.total)] == ["0.00"] * 4
    assert (b.sale_slug, b.sale_savings, b.coupon_verdict) == (None, D("0.00"), None)


ids = st.sampled_from(["a", "b", "c"])
lines = st.lists(
    st.builds(LineToPrice, ids, st.just("p"), st.integers(0, 10**7).map(from_minor_units), st.integers(1, 10)),
    max_size=6,
)
rates = st.one_of(
    st.just(INR),
    st.builds(ExchangeRate, st.sampled_from(["USD", "EUR", "GBP"]), st.decimals(D("0.0001"), D("2"), places=6)),
)
values = st.tuples(st.just("percent"), st.decimals(D("0.01"), D("100"), places=2)) | st.tuples(
    st.just("fixed"), st.integers(1, 10**8).map(from_minor_units)
)
sales = st.none() | st.builds(lambda kv, scope: Sale("s", kv[0], kv[1], scope), values, st.frozensets(ids))
coupons = st.none() | st.builds(
    lambda kv, scope, m: Coupon("C", kv[0], kv[1], min_subtotal=m, internship_ids=scope),
    values,
    st.frozensets(ids),
    st.integers(0, 10**7).map(from_minor_units),
)
billings = st.sampled_from([None, Billing("IN", "KA"), Billing("IN", "DL"), Billing("IN"), Billing("SG")])


@PROPERTY
@given(lines, rates, sales, coupons, billings)
def test_totals_add_up_to_the_paisa(
    ls: list[LineToPrice], rate: ExchangeRate, sale: Sale | None, coupon: Coupon | None, billing: Billing | None
) -> None:
    b = price_cart(ls, rate, now=NOW, sale=sale, coupon=coupon, billing=billing)
    assert b.subtotal == sum((line.line_total for line in b.lines), D("0"))
    assert b.discount_amount == sum((d.amount for d in b.discounts), D("0"))
    assert b.taxable_amount == b.subtotal - b.discount_amount
    assert b.tax_amount == sum((t.amount for t in b.taxes), D("0"))
    assert b.total == b.taxable_amount + b.tax_amount
    assert b.tax_rate == sum((t.rate for t in b.taxes), D("0"))
    _assert_all_amounts_are_non_negative_cents(b)
    if b.coupon_verdict is not None:
        assert b.discount_amount <= b.coupon_verdict.eligible_amount <= b.subtotal


def _assert_all_amounts_are_non_negative_cents(b: PriceBreakdown) -> None:
    amounts = [b.subtotal, b.discount_amount, b.taxable_amount, b.tax_amount, b.total, b.sale_savings]
    amounts += [
        a for line in b.lines for a in (line.list_unit_price, line.unit_price, line.unit_price_inr, line.line_total)
    ]
    amounts += [d.amount for d in b.discounts] + [t.amount for t in b.taxes]
    for amount in amounts:
        assert amount >= 0
        format_amount(amount)  # raises unless exactly representable with two places
