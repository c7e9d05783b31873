"""What the order is made of: exactly the snapshot cart_svc's ConvertCart returned (re-pricing the
cart at order time — catalog price, sale, coupon — is cart_svc's now, and tested there). A coupon
that no longer holds is ConvertCart's refusal 2004: the order is refused with cart_svc's own
reasons and nothing is made — no order, no payment session, no event.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from common.errors import CheckoutError, ErrorCode
from order_svc.tables import order_placements, orders, plumbing
from order_svc.views import TaxView
from tests.integration.order.conftest import OrderStack, count, fails_with, rows
from tests.support.fake_internal_services import line
from tests.support.tokens import new_user

OTHER_PLAN = "7a1e0000-0000-4000-8000-000000000106"


def figures(message) -> tuple[str, str, str, str]:  # type: ignore[no-untyped-def]
    return message.subtotal, message.discount_amount, message.tax_amount, message.total


SNAPSHOTS = {  # what cart_svc priced at order time → what the order must say
    "a new catalog price": dict(lines=[line(price="1200.00")], subtotal="1200.00", discount_amount="0.00",
                                taxes=(TaxView("IGST", "18", "216.00"),), tax_amount="216.00", total="1416.00"),
    "a sale": dict(lines=[line(price="900.00")], subtotal="900.00", discount_amount="0.00",
                   taxes=(TaxView("IGST", "18", "162.00"),), tax_amount="162.00", total="1062.00"),
    "a coupon at its value then": dict(lines=[line(price="1000.00")], subtotal="1000.00", discount_code="RP25",
                                       discount_amount="250.00", taxes=(TaxView("IGST", "18", "135.00"),),
                                       tax_amount="135.00", total="885.00"),
    "two lines in USD": dict(lines=[line(1, price="12.01", quantity=2), line(2, plan_id=OTHER_PLAN, price="72.06",
                                                                          months=6)],
                             currency="USD", exchange_rate="0.01201", subtotal="96.08", discount_amount="0.00",
                             taxes=(), tax_amount="0.00", total="96.08", billing={"country": "US", "state": ""}),
}


@pytest.mark.parametrize("name", list(SNAPSHOTS))
async def test_the_order_carries_exactly_the_snapshot_convert_cart_returned(stack: OrderStack, name: str) -> None:
    user, priced = new_user(), SNAPSHOTS[name]
    cart = stack.fakes.cart.add_cart(user_id=user, **priced)  # type: ignore[arg-type]

    order = await stack.place(user, cart)

    assert figures(order) == (priced["subtotal"], priced["discount_amount"], priced["tax_amount"], priced["total"])
    assert [(t.name, t.rate, t.amount) for t in order.taxes] == [(t.name, t.rate, t.amount) for t in priced["taxes"]]
    assert order.currency == priced.get("currency", "INR") and order.discount_code == priced.get("discount_code", "")
    assert order.payment.amount == priced["total"] and order.payment.currency == order.currency  # the gateway too
    [row] = await rows(stack.engine, select(orders).where(orders.c.order_token == order.order_token))
    assert row.items == priced["lines"]
    assert format(row.exchange_rate.normalize(), "f") == priced.get("exchange_rate", "1") == order.exchange_rate


COUPON_REFUSALS = ["code: coupon has expired", "code: coupon is not valid yet",
                   "code: cart subtotal is below the coupon's minimum",
                   "code: coupon does not apply to any internship in the cart", "code: no coupon with this code can be used on this cart",
                   "code: coupon redemption limit reached"]


@pytest.mark.parametrize("reason", COUPON_REFUSALS)
async def test_a_coupon_that_no_longer_holds_refuses_the_order_with_2004_and_makes_nothing(
        stack: OrderStack, reason: str) -> None:
    user = new_user()
    cart = stack.fakes.cart.add_cart(user_id=user, discount_code="RP10", discount_amount="100.00")
    stack.fakes.cart.refusal = CheckoutError(ErrorCode.INVALID_COUPON, validation_messages=[reason],
                                             suggested_action="remove the coupon from the cart and place the order again")

    detail = await fails_with(stack.place(user, cart), 2004)

    assert list(detail.validation_messages) == [reason]
    assert detail.suggested_action == "remove the coupon from the cart and place the order again"
    assert await count(stack.engine, orders, orders.c.cart_token == cart) == 0
    [placement] = await rows(stack.engine, select(order_placements).where(order_placements.c.cart_token == cart))
    assert placement.state == "refused"  # nothing taken: nothing for the recovery worker to give back
    assert await count(stack.engine, plumbing.outbox, plumbing.outbox.c.aggregate_id == str(placement.order_token)) == 0
    assert not stack.fakes.payments.requests and stack.fakes.cart.carts[cart].converted_by is None


async def test_the_order_is_refused_when_the_last_redemption_went_to_another_students_order(stack: OrderStack) -> None:
    late, early = new_user(), new_user()
    stack.fakes.cart.coupon_limits["ONCE"] = 1
    late_cart = stack.fakes.cart.add_cart(user_id=late, discount_code="ONCE", discount_amount="100.00")
    early_cart = stack.fakes.cart.add_cart(user_id=early, discount_code="ONCE", discount_amount="100.00")
    first = await stack.place(early, early_cart)
    assert first.discount_amount == "100.00"

    detail = await fails_with(stack.place(late, late_cart), 2004)

    assert list(detail.validation_messages) == ["code: coupon redemption limit reached"]
    assert await count(stack.engine, orders, orders.c.cart_token == late_cart) == 0
    assert stack.fakes.cart.held("ONCE") == 1


async def test_a_placed_order_is_recorded_on_its_placement(stack: OrderStack) -> None:
    user = new_user()
    order = await stack.place(user, stack.fakes.cart.add_cart(user_id=user))
    [placement] = await rows(stack.engine, select(order_placements)
                             .where(order_placements.c.order_token == uuid.UUID(order.order_token)))
    assert (placement.state, str(placement.resolved_order_token)) == ("placed", order.order_token)
