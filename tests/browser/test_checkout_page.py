"""The checkout page (web/) in headless Chromium, through the edge, against the real services and
the gateway emulator: catalog, cart, coupon errors, the tax split, phone width, the dev-only
login, and whole checkouts to "enrolled" through the gateways' own checkouts, as production runs
them: Razorpay Standard Checkout (the emulator's checkout.js and its modal) and Stripe Checkout
(the emulator's Checkout Session page), each paid at once and after a failed payment.

Any error a step meets fails the test (nothing here skips). Screenshots of every step land in
test-artifacts/screenshots/<test>/; the whole-checkout test also writes
test-artifacts/screenshots/checkout-desktop.png, and docs/checkout-desktop.png (the README's
picture) when that is missing or UPDATE_DOCS_SCREENSHOT=1 (the phone's: test_phone.py).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from common.auth import mint_token
from edge.config import page_config_js
from edge.settings import EdgeSettings
from tests.browser.pages import (
    BACKEND,
    BACKEND_1M,
    BACKEND_3M,
    BACKEND_6M,
    BANNER,
    DESIGN,
    DESIGN_1M,
    RAZORPAY_FRAME,
    SAMPLE_TITLES,
    add_plan,
    card,
    check_confirmation,
    check_enrolled_over_rest,
    choose_billing,
    choose_payment,
    create_coupon,
    emulator_payments,
    expect,
    expect_enrolled,
    key_id_until_the_gateways_branch,
    no_horizontal_overflow,
    open_page,
    opened_modal,
    order_over_rest,
    payment_over_rest,
    place_order,
    razorpay_modal,
    save_docs_screenshot,
    settle,
    sign_in,
    stored,
    wait_for_status,
)
from tests.browser.stack import Stack
from tools import dev_token as token_tool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# ---------------------------------------------------------------------------------------------
# tests


def test_catalog_renders(page, shots):
    open_page(page)
    for title in SAMPLE_TITLES:
        expect(page.locator("article.card h3", has_text=title)).to_have_count(1)
    backend = card(page, BACKEND)
    expect(backend.locator("input[type=radio]")).to_have_count(3)
    expect(backend.locator(".plan", has_text="3 months")).to_contain_text("₹3,999.00")
    expect(backend.locator("button.add-to-cart")).to_have_text("Add to cart")
    expect(page.locator("#cart-empty")).to_be_visible()
    expect(page.locator("#place-order")).to_be_disabled()
    # the page is the edge's, with its security headers; its scripts and styles loaded under them
    response = page.request.get("/")
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    shots.take("catalog")


def test_add_plan_to_cart_and_switch_plan(page, shots):
    open_page(page)
    add_plan(page, BACKEND, BACKEND_3M)
    item = page.locator(".cart-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("Backend Engineering with Python")
    expect(item).to_contain_text("3 months")
    expect(item).to_contain_text("₹3,999.00")
    expect(card(page, BACKEND).locator("button.add-to-cart")).to_have_text("In your cart")
    expect(page.locator("#cart-count")).to_have_text("1")
    shots.take("cart")

    # pick another plan of the same internship, from the cart
    page.select_option(".cart-item select.plan-switch", BACKEND_6M)
    settle(page, f".cart-item[data-plan-id='{BACKEND_6M}']")
    expect(page.locator(".cart-item")).to_contain_text("₹6,999.00")

    # a second internship, then the cart survives a reload (its token is kept in localStorage)
    add_plan(page, DESIGN, DESIGN_1M)
    expect(page.locator(".cart-item")).to_have_count(2)
    token = stored(page)["cartToken"]
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator(".cart-item")).to_have_count(2)
    assert stored(page)["cartToken"] == token

    page.locator(f".cart-item[data-plan-id='{DESIGN_1M}'] .remove-item").click()
    expect(page.locator(".cart-item")).to_have_count(1)
    shots.take("cart-switched")


def test_coupon_error_is_shown_once_next_to_its_field_with_its_correlation_id(page, shots, stack):
    open_page(page)
    add_plan(page, BACKEND, BACKEND_1M)
    page.fill("#coupon-code", "NO-SUCH-COUPON")
    with page.expect_response(lambda r: r.url.endswith("/coupon") and r.request.method == "POST") as answer:
        page.click("#coupon-apply")
    response = answer.value
    assert response.status == 400
    correlation_id = response.headers["x-correlation-id"]
    assert response.json()["error"]["code"] == 2004

    note = page.locator("#coupon-error")
    expect(note).to_be_visible()
    expect(note).to_have_attribute("data-code", "2004")
    expect(note).to_contain_text("Invalid coupon")
    expect(note).to_contain_text(f"Reference for support: {correlation_id}")
    # once, next to the field: the banner does not repeat it
    expect(page.locator("#error-banner")).to_be_hidden()
    expect(page.get_by_text("Invalid coupon")).to_have_count(1)
    shots.take("coupon-error")

    # then a real coupon applies (the note goes) and shows in the cart and the summary
    code = create_coupon(stack, "10")
    page.fill("#coupon-code", code.lower())
    page.click("#coupon-apply")
    settle(page, "#coupon-applied:not([hidden])")
    expect(note).to_be_hidden()
    expect(page.locator("#coupon-applied-code")).to_have_text(code)
    expect(page.locator("#summary-discount")).to_contain_text("₹149.90")
    shots.take("coupon-applied")
    page.click("#coupon-remove")
    expect(page.locator("#coupon-form")).to_be_visible()
    expect(page.locator("#summary-discount")).to_have_count(0)


def test_billing_state_decides_the_tax_split(page, shots):
    open_page(page)
    add_plan(page, BACKEND, BACKEND_1M)  # ₹1,499.00

    choose_billing(page, "IN", "KA")  # the seller's state: CGST + SGST
    settle(page, ".tax-line[data-tax='CGST']")
    expect(page.locator(".tax-line[data-tax='CGST']")).to_contain_text("CGST 9%")
    expect(page.locator(".tax-line[data-tax='CGST']")).to_contain_text("₹134.91")
    expect(page.locator(".tax-line[data-tax='SGST']")).to_contain_text("₹134.91")
    expect(page.locator(".tax-line[data-tax='IGST']")).to_have_count(0)
    expect(page.locator("#summary-total")).to_contain_text("₹1,768.82")
    shots.take("tax-KA")

    choose_billing(page, "IN", "MH")  # another state: IGST
    settle(page, ".tax-line[data-tax='IGST']")
    expect(page.locator(".tax-line[data-tax='IGST']")).to_contain_text("IGST 18%")
    expect(page.locator(".tax-line[data-tax='IGST']")).to_contain_text("₹269.82")
    expect(page.locator(".tax-line[data-tax='CGST']")).to_have_count(0)
    expect(page.locator(".tax-line[data-tax='SGST']")).to_have_count(0)
    expect(page.locator("#summary-total")).to_contain_text("₹1,768.82")
    shots.take("tax-MH")

    choose_billing(page, "US")  # export of services: no GST, no state to choose
    settle(page, ".tax-line[data-tax='none']")
    expect(page.locator("#billing-state")).to_be_hidden()
    expect(page.locator("#summary-total")).to_contain_text("₹1,499.00")
    shots.take("tax-export")
    assert stored(page)["billing"] == {"country": "US", "state": ""}


def test_phone_width_has_no_horizontal_scroll(page, shots):
    page.set_viewport_size({"width": 375, "height": 812})
    open_page(page)
    no_horizontal_overflow(page)
    add_plan(page, BACKEND, BACKEND_3M)
    choose_billing(page, "IN", "KA")
    settle(page, ".tax-line[data-tax='CGST']")
    sign_in(page)
    no_horizontal_overflow(page)
    shots.take("phone-cart")
    # the cart is far below the catalog on a phone: the header's cart link takes you there
    page.evaluate("window.scrollTo(0, 0)")
    page.click("#cart-link")
    expect(page.locator("#cart-panel")).to_be_in_viewport()
    expect(page.locator("#cart-count")).to_have_text("1")
    page.fill("#coupon-code", "NOT-A-REAL-COUPON-CODE-WITH-A-LONG-NAME")
    page.click("#coupon-apply")
    expect(page.locator("#coupon-error")).to_be_visible()
    expect(page.locator(BANNER)).to_be_hidden()
    box = page.locator("#coupon-error").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    no_horizontal_overflow(page)
    shots.take("phone-error", full_page=False)


def test_dev_login_is_disabled_when_the_secret_is_not_the_dev_default(page, shots):
    # the edge renders this script from common.config; a real JWT_SECRET gives dev_login null
    script = page_config_js(EdgeSettings(dev_login=False))
    assert "dev-only" not in script and '"dev_login": null' in script
    page.route("**/assets/config.js", lambda route: route.fulfill(status=200, content_type="text/javascript", body=script))
    open_page(page)
    expect(page.locator("#dev-login-button")).to_be_disabled()
    expect(page.locator("#dev-user")).to_be_disabled()
    expect(page.locator("#dev-login-note")).to_contain_text("does not use the development JWT secret")
    expect(page.locator(".dev-badge")).to_have_text(re.compile("development only", re.I))
    shots.take("dev-login-disabled")


def test_dev_sign_in_by_email_or_name(page, shots, stack):
    """The dev form asks for an e-mail or a name and signs in as the student `make token` derives
    from it (tools/dev_token.py, common/dev_users.py): a token of `make token USER=<that e-mail>` sees
    the cart the page claimed."""
    open_page(page)
    expect(page.locator("label[for='dev-user']")).to_have_text("E-mail or name")
    expect(page.locator("#account-panel")).not_to_contain_text("UUID")
    add_plan(page, BACKEND, BACKEND_1M)
    page.click("#dev-login-button")  # nothing entered: said once, under the field
    expect(page.locator("#dev-user-error")).to_have_text("Enter your e-mail or your name.")
    expect(page.locator(BANNER)).to_be_hidden()

    user_id = sign_in(page, "Asha.Rao@Example.com")
    expect(page.locator("#dev-user-error")).to_be_hidden()
    expect(page.locator("#account-chip")).to_have_text("Signed in · Asha.Rao@Example.com")
    shots.take("signed-in")
    token = mint_token(stack.settings, token_tool.user_id_for("asha.rao@example.com"))
    cart = httpx.get(f"{stack.url}/api/v1/cart/{stored(page)['cartToken']}",
                     headers={"authorization": f"Bearer {token}"}, timeout=10)
    assert cart.status_code == 200 and cart.json()["user_id"] == user_id, cart.text

    page.click("#logout-button")  # a name works too, and is another student
    other = sign_in(page, "Ravi Kumar")
    assert other != user_id


def test_whole_checkout_to_enrollment(page, shots, stack):
    open_page(page)
    shots.take("catalog")
    add_plan(page, BACKEND, BACKEND_3M)
    shots.take("cart")
    code = create_coupon(stack, "10")
    page.fill("#coupon-code", code)
    page.click("#coupon-apply")
    settle(page, "#coupon-applied:not([hidden])")
    choose_billing(page, "IN", "KA")
    settle(page, ".tax-line[data-tax='SGST']")
    expect(page.locator("#summary-discount")).to_contain_text("₹399.90")
    expect(page.locator("#summary-total")).to_contain_text("₹4,246.94")  # (3999 − 399.90) × 1.18
    shots.take("coupon-and-tax")
    expect(page.locator("#place-order")).to_be_disabled()  # not signed in yet
    sign_in(page, "asha@example.com")
    shots.take("signed-in")

    patched = key_id_until_the_gateways_branch(page)
    choose_payment(page, "razorpay", "upi")
    place_order(page)
    expect(page.locator("#order-total")).to_have_text("₹4,246.94")
    expect(page.locator("#pay-now")).to_have_text("Pay ₹4,246.94")
    expect(page.locator(".cart-note")).to_contain_text("ordered")
    shots.take("order-placed")
    placed = order_over_rest(page, stack)
    assert (placed["status"], placed["payment"]["gateway"]) == ("awaiting_payment", "razorpay"), placed

    # Razorpay Standard Checkout: the settings' checkout.js, its modal over this page, the method prefilled
    with page.expect_request(stack.settings.razorpay_checkout_js_url):
        modal = razorpay_modal(page)
    expect(modal.locator("#amount")).to_contain_text("4,246.94")
    expect(modal.locator("#order-id")).to_have_text(placed["payment"]["gateway_order_id"])
    expect(modal.locator("#method")).to_have_value("upi")
    assert page.url.startswith(stack.url)  # the student never left the page
    shots.take("gateway", full_page=False)
    with page.expect_response(lambda r: r.url.endswith("/api/v1/payment/verify")) as verified:
        modal.locator("#pay-button").click()
    assert verified.value.status == 200, verified.value.text()
    expect(page.locator(RAZORPAY_FRAME)).to_have_count(0)  # the handler ran: the modal closed
    expect_enrolled(page)
    order = check_enrolled_over_rest(page, stack)
    [payment] = emulator_payments(stack, order["payment"]["gateway_order_id"])
    assert (payment["status"], payment["method"], payment["amount"]) == ("captured", "upi", 424694), payment
    assert verified.value.json()["status"] == "captured", verified.value.json()
    check_confirmation(page, stack, "Backend Engineering with Python", "3 months")
    save_docs_screenshot(page, "checkout-desktop.png")  # the README's picture: what a student sees after paying
    shots.take("enrolled")
    if patched:
        print(f"NOTE: key_id added by the test (helper A's branch not merged yet): {patched}")

    # the plan just bought cannot go into a cart again (another plan of it, or another internship, can)
    backend = card(page, BACKEND)
    backend.locator(f"input[data-plan-id='{BACKEND_3M}']").check()
    expect(backend.locator("button.add-to-cart")).to_be_disabled()
    expect(backend.locator("button.add-to-cart")).to_have_text("You're enrolled in this plan")
    expect(backend.locator(".enrolled")).to_have_text("Enrolled: 3 months")
    backend.locator(f"input[data-plan-id='{BACKEND_6M}']").check()
    expect(backend.locator("button.add-to-cart")).to_be_enabled()
    page.reload()  # the enrollments come from the API, not from this visit
    page.wait_for_selector("body[data-ready=true]")
    backend.locator(f"input[data-plan-id='{BACKEND_3M}']").check()
    expect(backend.locator("button.add-to-cart")).to_be_disabled()
    expect(card(page, DESIGN).locator("button.add-to-cart")).to_be_enabled()


@pytest.mark.parametrize("retry", ["same-modal", "new-attempt"])
def test_failed_payment_then_a_successful_retry(page, shots, stack, retry):
    """A failed payment in Razorpay Checkout's modal: the page says so and offers a retry, the
    modal stays open. `same-modal`: the student presses Pay again there (Razorpay takes several
    payments per order), whatever the payment.failed webhook did meanwhile. `new-attempt`: once that
    webhook has made the order payment_failed, the student closes the modal and the page's retry
    opens a new payment attempt (a new Razorpay order)."""
    patched = key_id_until_the_gateways_branch(page)
    open_page(page)
    add_plan(page, DESIGN, DESIGN_1M)
    choose_billing(page, "IN", "MH")
    settle(page, ".tax-line[data-tax='IGST']")
    sign_in(page)
    choose_payment(page, "razorpay", "netbanking")
    place_order(page)
    first = order_over_rest(page, stack)
    modal = razorpay_modal(page)
    expect(modal.locator("#method")).to_have_value("netbanking")
    shots.take("gateway", full_page=False)

    modal.locator("#fail-button").click()
    expect(modal.locator("#status")).to_contain_text("Payment failed")
    settle(page, "#retry-payment:not([hidden])")
    expect(page.locator("#order-status")).to_contain_text("The payment did not go through")
    # the failed step says what failed, not "Payment received"
    expect(page.locator("#order-steps li.failed")).to_have_count(1)
    expect(page.locator("#order-steps li.failed")).to_have_text("Payment failed")
    expect(page.locator("#order-steps")).not_to_contain_text("received")
    expect(page.locator("#pay-now")).to_be_hidden()
    expect(modal.locator("#pay-button")).to_be_enabled()  # Razorpay keeps the modal open for another try
    [failed] = emulator_payments(stack, first["payment"]["gateway_order_id"])
    assert (failed["status"], failed["method"]) == ("failed", "netbanking"), failed
    shots.take("payment-failed", full_page=False)

    if retry == "same-modal":
        modal.locator("#pay-button").click()
    else:
        after_failure = wait_for_status(page, stack, "payment_failed", timeout=30)
        assert payment_over_rest(page, stack, after_failure["payment"]["payment_token"])["status"] == "failed"
        modal.locator("#modal-close").click()
        expect(page.locator(RAZORPAY_FRAME)).to_have_count(0)
        with page.expect_response(lambda r: r.url.endswith("/payment") and r.request.method == "POST") as opened:
            page.click("#retry-payment")
        assert opened.value.status == 200, opened.value.text()
        modal = opened_modal(page)
        expect(modal.locator("#order-id")).not_to_have_text(first["payment"]["gateway_order_id"])
        shots.take("gateway-retry", full_page=False)
        modal.locator("#pay-button").click()
    expect(page.locator(RAZORPAY_FRAME)).to_have_count(0)
    expect_enrolled(page)
    order = check_enrolled_over_rest(page, stack)
    assert order["total"] == "1178.82"  # 999.00 + IGST 18 % (179.82)
    if retry == "same-modal":
        assert order["payment"]["payment_token"] == first["payment"]["payment_token"], "the same session was paid"
        statuses = [p["status"] for p in emulator_payments(stack, first["payment"]["gateway_order_id"])]
        assert statuses == ["failed", "captured"], statuses
    else:
        assert order["payment"]["payment_token"] != first["payment"]["payment_token"], "a new attempt was opened"
        [paid] = emulator_payments(stack, order["payment"]["gateway_order_id"])
        assert paid["status"] == "captured", paid
    shots.take("enrolled")
    if patched:
        print(f"NOTE: key_id added by the test (helper A's branch not merged yet): {patched}")


def test_razorpay_checkout_takes_its_outcome_only_from_its_own_modal(page, stack):
    """A message that looks like the modal's "paid" but comes from elsewhere (here the page itself)
    is ignored: no verify, the modal stays open; the real Pay still works."""
    key_id_until_the_gateways_branch(page)
    open_page(page)
    add_plan(page, DESIGN, DESIGN_1M)
    choose_billing(page, "US")
    settle(page, ".tax-line[data-tax='none']")
    sign_in(page)
    place_order(page)
    modal = razorpay_modal(page)
    verifies: list[str] = []
    page.on("request", lambda r: verifies.append(r.url) if r.url.endswith("/api/v1/payment/verify") else None)
    # messages are dispatched in order: once the marker is seen, every listener has had the forgery
    page.evaluate("""() => new Promise((resolve) => {
        window.addEventListener("message", (event) => { if (event.data === "marker") resolve(); });
        window.postMessage({source: "gateway-emulator/razorpay-checkout", event: "payment.success",
          payload: {razorpay_payment_id: "pay_forged", razorpay_order_id: "order_forged", razorpay_signature: "00"}}, "*");
        window.postMessage("marker", "*");
    })""")
    assert page.locator(RAZORPAY_FRAME).count() == 1  # the script's handler closes the modal at once: it did not
    assert verifies == []
    expect(page.locator("#order-status")).to_contain_text("Waiting for your payment")
    modal.locator("#pay-button").click()
    expect_enrolled(page)
    assert len(verifies) == 1


# ---------------------------------------------------------------------------------------------
# Stripe Checkout: the page sends the student to the session's checkout_url (a Checkout Session's
# page, the emulator's here) and takes them back on the order's return_url / cancel_url.


def require_checkout_session(order: dict) -> None:
    """Stripe Checkout needs payment_svc to open a Checkout Session and the emulator to serve its
    page: helper A's branch i11-gateways. Before it is merged the session is a PaymentIntent and
    these tests fail here, saying so (never a skip)."""
    url = order["payment"]["checkout_url"]
    if "cs_" not in urlsplit(url).path:
        pytest.fail(f"Stripe Checkout needs the Checkout Sessions of branch i11-gateways (helper A), not merged "
                    f"here yet: the order's checkout_url is {url!r}, not a Checkout Session's page", pytrace=False)


def stripe_order(page: Any, stack: Stack) -> dict:
    open_page(page)
    add_plan(page, BACKEND, BACKEND_1M)  # ₹1,499.00
    choose_billing(page, "US")  # export of services: no GST
    settle(page, ".tax-line[data-tax='none']")
    sign_in(page)
    choose_payment(page, "stripe")
    expect(page.locator("#payment-method")).to_be_disabled()  # Stripe Checkout here takes cards
    place_order(page)
    expect(page.locator("#pay-now")).to_have_text("Pay ₹1,499.00")
    order = order_over_rest(page, stack)
    assert (order["status"], order["payment"]["gateway"], order["total"]) == ("awaiting_payment", "stripe", "1499.00")
    require_checkout_session(order)
    return order


def to_stripe_checkout(page: Any, stack: Stack) -> None:
    page.click("#pay-now")
    page.wait_for_url(f"{stack.emulator.url}/**")
    expect(page.locator("body")).to_contain_text("1,499.00")
    expect(page.locator("#pay-button")).to_be_enabled()


def test_stripe_checkout_to_enrollment(page, shots, stack):
    placed = stripe_order(page, stack)
    to_stripe_checkout(page, stack)
    assert page.url.split("?")[0] == placed["payment"]["checkout_url"].split("?")[0]
    shots.take("stripe-checkout")
    page.click("#pay-button")
    page.wait_for_url(f"{stack.url}/**")  # the session's success_url: the order's return_url
    expect_enrolled(page)
    order = check_enrolled_over_rest(page, stack)
    assert order["payment"]["payment_token"] == placed["payment"]["payment_token"]
    assert order["payment"]["status"] == "captured", order["payment"]
    assert "payment=" not in page.url  # the return parameters were taken off the address
    check_confirmation(page, stack, "Backend Engineering with Python", "1 month")  # back from the gateway
    shots.take("enrolled")


def test_stripe_failed_payment_then_a_successful_retry(page, shots, stack):
    """A declined card on Stripe Checkout's page: the page says so and the session takes another try
    (as Stripe's does until it completes or expires); paid, the student comes back enrolled."""
    placed = stripe_order(page, stack)
    to_stripe_checkout(page, stack)
    page.click("#fail-button")
    expect(page.locator("#error")).to_contain_text("declined")
    assert page.url.startswith(stack.emulator.url)  # Stripe keeps the customer on its page
    expect(page.locator("#pay-button")).to_be_enabled()
    shots.take("stripe-declined")
    page.click("#pay-button")
    page.wait_for_url(f"{stack.url}/**")
    expect_enrolled(page)
    order = check_enrolled_over_rest(page, stack)
    assert order["payment"]["payment_token"] == placed["payment"]["payment_token"], "the same session was paid"
    assert order["payment"]["status"] == "captured", order["payment"]
    shots.take("enrolled")


def test_back_from_stripe_without_paying_offers_the_payment_again(page, shots, stack):
    """Stripe Checkout's cancel link sends the student to the order's cancel_url: the page says
    nothing was paid and its retry goes back to the same session's page."""
    placed = stripe_order(page, stack)
    to_stripe_checkout(page, stack)
    page.click("#cancel-link")  # to the session's cancel_url: the order's
    page.wait_for_url(f"{stack.url}/**")
    page.wait_for_selector("body[data-ready=true]")
    settle(page, "#retry-payment:not([hidden])")
    expect(page.locator("#order-status")).to_contain_text("You left the payment page without paying")
    expect(page.locator("#pay-now")).to_be_hidden()
    assert "payment=" not in page.url
    shots.take("back-without-paying")
    page.click("#retry-payment")
    page.wait_for_url(f"{stack.emulator.url}/**")
    assert page.url.split("?")[0] == placed["payment"]["checkout_url"].split("?")[0]
    page.click("#pay-button")
    page.wait_for_url(f"{stack.url}/**")
    expect_enrolled(page)
    assert check_enrolled_over_rest(page, stack)["payment"]["payment_token"] == placed["payment"]["payment_token"]
