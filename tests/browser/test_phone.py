"""The checkout page on a phone (375 × 812): the cart summary stays in view while the student
scrolls the catalog, the billing state list is whole, and a whole checkout ends on the confirmation
at the top. Writes test-artifacts/screenshots/checkout-phone.png, and docs/checkout-phone.png (the
README's picture) when that is missing or UPDATE_DOCS_SCREENSHOT=1."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.pages import (
    BACKEND,
    BACKEND_3M,
    DESIGN,
    DESIGN_1M,
    add_plan,
    card,
    check_confirmation,
    choose_billing,
    choose_payment,
    expect,
    no_horizontal_overflow,
    open_page,
    place_order,
    razorpay_modal,
    save_docs_screenshot,
    settle,
    sign_in,
)
from tests.browser.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PHONE = {"width": 375, "height": 812}
KARNATAKA = "KA"  # the seller's state: CGST + SGST


def in_view(page: Any, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"] + 0.5


def test_cart_summary_stays_in_view_while_scrolling(page, shots):
    page.set_viewport_size(PHONE)
    open_page(page)
    expect(page.locator("#cart-bar")).to_be_hidden()  # nothing in the cart: nothing to keep in view
    add_plan(page, BACKEND, BACKEND_3M)
    bar = page.locator("#cart-bar")
    expect(bar).to_be_visible()
    expect(page.locator("#cart-bar-count")).to_have_text("1 internship")
    settle(page, "#summary-total")  # the estimate: the bar shows its total once it is there
    expect(page.locator("#cart-bar-total")).to_have_text("₹4,718.82 total")  # 3999 × 1.18

    # down through the catalog, and further: the bar stays at the bottom of the screen
    for y in (600, 1500, 2500):
        page.evaluate(f"window.scrollTo(0, {y})")
        assert in_view(page, "#cart-bar"), (y, bar.bounding_box())
    box = bar.bounding_box()
    assert box is not None and abs(box["y"] + box["height"] - PHONE["height"]) < 1, box
    shots.take("cart-bar", full_page=False)

    choose_billing(page, "US")  # export of services: no GST
    expect(page.locator("#cart-bar-total")).to_have_text("₹3,999.00 total")
    add_plan(page, DESIGN, DESIGN_1M)
    expect(page.locator("#cart-bar-count")).to_have_text("2 internships")
    expect(page.locator("#cart-bar-total")).to_have_text("₹4,998.00 total")

    page.evaluate("window.scrollTo(0, 0)")
    page.click("#cart-bar-link")
    expect(page.locator("#cart-panel")).to_be_in_viewport()
    no_horizontal_overflow(page)


def test_state_list_and_every_select_are_whole_on_a_phone(page, shots):
    page.set_viewport_size(PHONE)
    open_page(page)
    select = page.locator("#billing-state")
    country = page.locator("#billing-country").bounding_box()
    state = select.bounding_box()
    assert country is not None and state is not None
    assert state["y"] > country["y"] + country["height"] - 1, (country, state)  # a line of its own
    assert state["x"] >= 0 and state["x"] + state["width"] <= PHONE["width"], state
    # the longest name of each list fits its select's box as chosen (nothing cut off)
    for chooser in ("#billing-state", "#billing-country", "#payment-gateway", "#payment-method"):
        fits = page.evaluate("""(selector) => {
            const select = document.querySelector(selector);
            const style = getComputedStyle(select);
            const ctx = document.createElement('canvas').getContext('2d');
            ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
            const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 20;
            const widest = Math.max(...Array.from(select.options, (o) => ctx.measureText(o.text).width));
            return {room, widest, count: select.options.length};
        }""", chooser)
        assert fits["widest"] <= fits["room"], (chooser, fits)
    assert page.locator("#billing-state option").count() == 37  # 36 states and territories + the prompt
    values = page.eval_on_selector_all("#billing-state option", "options => options.map(o => o.value).filter(Boolean)")
    for value in values:
        page.select_option("#billing-state", value)
        expect(select).to_have_value(value)
    no_horizontal_overflow(page)
    shots.take("state-list", full_page=False)


def test_phone_checkout_ends_on_the_confirmation(page, shots, stack: Stack):
    page.set_viewport_size(PHONE)
    open_page(page)
    add_plan(page, BACKEND, BACKEND_3M)
    choose_billing(page, "IN", KARNATAKA)
    settle(page, ".tax-line[data-tax='SGST']")
    sign_in(page, "asha.rao@example.com")
    choose_payment(page, "razorpay", "upi")
    place_order(page)
    number = page.locator("#order-number").inner_text()
    expect(page.locator("#cart-bar-count")).to_have_text(f"Order {number}")  # placed, not paid: still in view
    modal = razorpay_modal(page)
    modal.locator("#pay-button").click()
    order = check_confirmation(page, stack, "Backend Engineering with Python", "3 months")
    expect(page.locator("#cart-bar")).to_be_hidden()  # paid: nothing left to pay
    assert order["total"] == "4718.82", order
    no_horizontal_overflow(page)
    expect(card(page, BACKEND).locator("button.add-to-cart")).to_be_disabled()
    save_docs_screenshot(page, "checkout-phone.png")
