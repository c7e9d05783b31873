"""A Stripe checkout through the emulator, as a browser does it: OpenSession opens a Checkout
Session, the browser goes to its `url` (the emulator's hosted page), presses Pay (or Fail, then
Pay), Stripe's webhooks reach payment_svc and the session is captured; the browser is sent to the
order's return URL with the session id."""

from __future__ import annotations

import html
import re

import httpx

from tests.support.payments import captured_once, events, new_order_token, open_session, payment_row
from tests.support.tokens import new_user
from tests.support.webhooks import settled

RETURN_URL = "http://127.0.0.1:8080/?order=1"


async def open_stripe(hooks, user: str, **more):
    order = new_order_token()
    session = await open_session(hooks, order, user, gateway="stripe", amount="49.99", currency="USD",
                                 return_url=RETURN_URL, payment_method="card", **more)
    assert session.gateway == "stripe" and session.checkout_url.endswith(f"/checkout/sessions/{session.gateway_order_id}")
    return order, session


def forms(page: str) -> dict[str, str]:
    """The page's buttons: button id → its form's action."""
    return {button: html.unescape(action) for action, button in
            re.findall(r"<form method='post' action='([^']+)'><button id='([^']+)'", page)}


async def test_pay_on_the_hosted_page_captures_through_the_webhooks(hooks, engine):
    user = new_user()
    order, session = await open_stripe(hooks, user)
    assert session.key_id == "pk_test_devkey" and session.payment_method == "card"

    async with httpx.AsyncClient(base_url=hooks.emulator.url) as browser:
        page = await browser.get(session.checkout_url)
        assert page.status_code == 200 and "$49.99" in page.text and "test order" in page.text
        buttons = forms(page.text)
        assert set(buttons) == {"pay-button", "fail-button"}
        paid = await browser.post(buttons["pay-button"])
    assert paid.status_code == 303
    assert paid.headers["location"] == f"{RETURN_URL}&session_id={session.gateway_order_id}"

    sent = await settled(hooks.emulator, session.gateway_order_id, 2)
    assert sorted(e["event"] for e in sent) == ["checkout.session.completed", "payment_intent.succeeded"]
    assert {e["state"] for e in sent} == {"delivered"}
    payment = await payment_row(engine, session.payment_token)
    assert payment.status == "captured" and payment.gateway_payment_id.startswith("pi_")
    assert payment.payment_method == "card"
    captured = await captured_once(engine, order)
    assert (captured["gateway_order_id"], captured["amount"], captured["source"]) == (
        session.gateway_order_id, "49.99", "webhook")

    async with httpx.AsyncClient(base_url=hooks.emulator.url) as browser:  # the page of a complete session
        again = await browser.get(session.checkout_url)
    assert "This payment is complete." in again.text and not forms(again.text)


async def test_fail_then_pay_on_the_same_session(hooks, engine):
    user = new_user()
    order, session = await open_stripe(hooks, user)
    async with httpx.AsyncClient(base_url=hooks.emulator.url) as browser:
        buttons = forms((await browser.get(session.checkout_url)).text)
        declined = await browser.post(buttons["fail-button"])
        assert declined.status_code == 200 and "Your card was declined" in declined.text
        assert set(forms(declined.text)) == {"pay-button", "fail-button"}  # another try is offered
        [failure] = await settled(hooks.emulator, session.gateway_order_id, 1)
        assert failure["event"] == "payment_intent.payment_failed"
        assert (await payment_row(engine, session.payment_token)).status == "failed"

        paid = await browser.post(forms(declined.text)["pay-button"])
    assert paid.status_code == 303 and session.gateway_order_id in paid.headers["location"]
    await settled(hooks.emulator, session.gateway_order_id, 3)
    assert (await payment_row(engine, session.payment_token)).status == "captured"
    await captured_once(engine, order)
    assert len(await events(engine, order, "checkout.payment.failed")) == 1


async def test_the_cancel_link_goes_to_the_cancel_url(hooks, engine):
    user = new_user()
    _, session = await open_stripe(hooks, user, cancel_url="http://127.0.0.1:8080/?cancelled=1")
    async with httpx.AsyncClient(base_url=hooks.emulator.url) as browser:
        page = (await browser.get(session.checkout_url)).text
    assert "id='cancel-link' href='http://127.0.0.1:8080/?cancelled=1'" in page
    assert (await payment_row(engine, session.payment_token)).status == "pending"
