"""One whole checkout over REST, step by step with timings: `make demo`, or

    python -m tools.demo [--url http://127.0.0.1:8080] [--plan PLAN_ID] [--state KA]

Needs the stack running (`make run`) with the gateway emulator: the demo pays on the emulator's
hosted checkout page as a browser would (POST to its Pay button, then follows nothing: a 303's
Location, or the result page that Standard Checkout hands to its handler, carries Razorpay's
signed parameters), and reads the emulator's webhook log to show the
webhook's delivery. Tokens are minted from JWT_SECRET (the development default unless set), so run
it with the same environment as the stack.

Steps: edge health → catalog → sign in → coupon (created through the admin API) → cart → apply
coupon → estimate (tax split) → order → payment at the hosted page → callback (verify) → webhook →
enrollment. Exit status 0 when the order ends fulfilled with an enrollment; 1 when a step fails
(the step is named, with the API's error and correlation id); 2 when the edge cannot be reached.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

import httpx

from common.auth import mint_token
from common.settings import load_settings

DEFAULT_PLAN = "7a1e0000-0000-4000-8000-000000000103"  # sample catalog: Backend Engineering, 3 months
SYMBOLS = {"INR": "₹", "USD": "$", "EUR": "€", "GBP": "£"}


class StepFailed(Exception):
    pass


def money(amount: str, currency: str) -> str:
    """"3999.00" → "₹3,999.00" (Indian grouping for INR: ₹1,49,999.00). Display only: never parsed."""
    whole, _, fraction = amount.lstrip("-").partition(".")
    if currency == "INR" and len(whole) > 3:
        head, groups = whole[:-3], list[str]()
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        grouped = ",".join([head, *groups] if head else groups) + "," + whole[-3:]
    else:
        grouped = f"{int(whole or '0'):,}"
    sign = "-" if amount.startswith("-") else ""
    return f"{sign}{SYMBOLS.get(currency, currency + ' ')}{grouped}.{fraction or '00'}"


def period(value: int, unit: str) -> str:
    return f"{value} {unit}{'' if value == 1 else 's'}"


def describe_error(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]!r} (correlation id {response.headers.get('x-correlation-id', '-')})"
    text = f"HTTP {response.status_code}, code {error.get('code')}: {error.get('message')}"
    if error.get("validation_messages"):
        text += f" ({'; '.join(error['validation_messages'])})"
    if error.get("code") == 5001:
        text += " [that service has not implemented this yet]"
    return f"{text} (correlation id {error.get('correlation_id') or response.headers.get('x-correlation-id', '-')})"


class Demo:
    def __init__(self, url: str, *, plan_id: str, state: str, timeout: float, color: bool, callback: bool = True) -> None:
        self.url = url.rstrip("/")
        self.plan_id = plan_id
        self.state = state
        self.timeout = timeout
        self.color = color
        self.use_callback = callback
        self.http = httpx.Client(base_url=self.url, timeout=20.0, trust_env=False)
        self.settings = load_settings()
        self.user_id = str(uuid.uuid4())
        self.token = ""
        self.number = 0
        self.started = time.perf_counter()
        self.facts: dict[str, Any] = {}
        self.trace_id = ""  # x-trace-id of the last answer

    # ---- output ---------------------------------------------------------------------------

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def step(self, name: str, action: Callable[[], str]) -> None:
        self.number += 1
        began = time.perf_counter()
        try:
            summary = action()
        except StepFailed as failure:
            elapsed = (time.perf_counter() - began) * 1000
            print(f"{self.number:>3}. {name:<11} {self._paint('FAILED', '31;1')} {failure}  ({elapsed:.0f} ms)", flush=True)
            raise StepFailed(f"step {self.number} '{name}' failed: {failure}") from None
        elapsed = (time.perf_counter() - began) * 1000
        print(f"{self.number:>3}. {name:<11} {summary}  {self._paint(f'({elapsed:.0f} ms)', '2')}", flush=True)

    # ---- HTTP -----------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True, expect: int = 200,
             headers: dict[str, str] | None = None) -> Any:
        sent = dict(headers or {})
        if auth and self.token:
            sent["authorization"] = f"Bearer {self.token}"
        try:
            response = self.http.request(method, path, json=body, headers=sent)
        except httpx.HTTPError as exc:
            raise StepFailed(f"{method} {path}: {exc.__class__.__name__}: {exc}") from None
        self.trace_id = response.headers.get("x-trace-id", "")
        if response.status_code != expect:
            raise StepFailed(f"{method} {path}: {describe_error(response)}")
        return response.json() if response.content else None

    # ---- the steps ------------------------------------------------------------------------

    def health(self) -> str:
        response = self.http.get("/healthz")
        if response.status_code != 200:
            raise StepFailed(f"/healthz answered {response.status_code}: not every service is serving ({describe_error(response)})")
        return "every service is serving"

    def catalog(self) -> str:
        data = self.call("GET", "/api/v1/internships", auth=False)
        for internship in data["internships"]:
            for plan in internship["plans"]:
                if plan["plan_id"] == self.plan_id:
                    self.facts["plan"] = (internship, plan)
                    length = period(plan["period"]["value"], plan["period"]["unit"])
                    return (f"{len(data['internships'])} internships; chose \"{internship['title']}\", "
                            f"{length} at {money(plan['price'], plan['currency'])}")
        raise StepFailed(f"plan {self.plan_id} is not in the catalog (load the sample catalog: python -m cart_svc.seed)")

    def sign_in(self) -> str:
        self.token = mint_token(self.settings, self.user_id)
        dev = " with the DEVELOPMENT secret" if self.settings.jwt_secret_is_dev_default else ""
        return f"student {self.user_id} (JWT minted{dev})"

    def create_coupon(self) -> str:
        code = f"DEMO{uuid.uuid4().hex[:8].upper()}"
        admin = mint_token(self.settings, str(uuid.uuid4()), ["admin"])
        coupon = self.call("POST", "/api/v1/admin/coupons", {"code": code, "kind": "percent", "value": "10", "max_redemptions": 1},
                           auth=False, headers={"authorization": f"Bearer {admin}"})
        self.facts["coupon"] = coupon["code"]
        return f"admin created coupon {coupon['code']}: {coupon['value']}% off, one redemption"

    def cart(self) -> str:
        cart = self.call("POST", "/api-proxy/api/cart", {"items": [{"plan_id": self.plan_id, "quantity": 1}], "currency": "INR"})
        self.facts["cart"] = cart
        return f"cart {cart['token']} ({cart['status']}): {len(cart['items'])} item, subtotal {money(cart['subtotal'], cart['currency'])}"

    def apply_coupon(self) -> str:
        token = self.facts["cart"]["token"]
        cart = self.call("POST", f"/api/v1/cart/{token}/coupon", {"code": self.facts["coupon"]})
        self.facts["cart"] = cart
        return f"{cart['discount_code']} applied: −{money(cart['discount_amount'], cart['currency'])}"

    def estimate(self) -> str:
        token = self.facts["cart"]["token"]
        est = self.call("POST", "/api/v1/cart/estimate", {"cart_token": token, "billing": {"country": "IN", "state": self.state}})
        self.facts["estimate"] = est
        taxes = " + ".join(f"{t['name']} {t['rate']}% {money(t['amount'], est['currency'])}" for t in est["taxes"]) or "no tax"
        return (f"billing IN/{self.state}: subtotal {money(est['subtotal'], est['currency'])} − discount "
                f"{money(est['discount_amount'], est['currency'])} = taxable {money(est['taxable_amount'], est['currency'])}; "
                f"{taxes}; total {money(est['total'], est['currency'])}")

    def order(self) -> str:
        token = self.facts["cart"]["token"]
        body = {"cart_token": token, "billing": {"country": "IN", "state": self.state}, "gateway": "razorpay",
                "return_url": f"{self.url}/"}
        order = self.call("POST", "/api/v1/order", body, headers={"idempotency-key": str(uuid.uuid4())})
        self.facts["order"] = order
        self.facts["trace_id"] = self.trace_id
        payment = order.get("payment") or {}
        if not payment.get("checkout_url"):
            raise StepFailed(f"order {order['order_token']} has no payment session (status {order['status']})")
        if order["total"] != self.facts["estimate"]["total"]:
            raise StepFailed(f"order total {order['total']} differs from the estimate's {self.facts['estimate']['total']}")
        return (f"order {order['order_token']} {order['status']}, total {money(order['total'], order['currency'])}; "
                f"{payment['gateway']} order {payment['gateway_order_id']}")

    def pay(self) -> str:
        checkout_url = self.facts["order"]["payment"]["checkout_url"]
        parts = urlsplit(checkout_url)
        self.facts["gateway_base"] = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        page = httpx.get(checkout_url, timeout=10, trust_env=False)
        # the form around the Pay button, as a browser would submit it
        form = re.search(r"<form[^>]*action=['\"]([^'\"]+)['\"][^>]*>\s*<button[^>]*id=['\"]pay-button['\"]", page.text)
        if page.status_code != 200 or form is None:
            raise StepFailed(f"the hosted checkout page {checkout_url} answered {page.status_code} without a Pay button")
        pay_url = urljoin(checkout_url, html.unescape(form.group(1)))
        response = httpx.post(pay_url, timeout=10, trust_env=False, follow_redirects=False)
        if response.status_code == 303:  # a callback URL registered with the gateway order
            location = response.headers["location"]
            params = dict(parse_qsl(urlsplit(location).query))
            back = "browser sent back to " + urlunsplit(urlsplit(location)._replace(query="", fragment=""))
        elif response.status_code == 200:  # Standard Checkout: the page hands the result to its handler
            params = {key: html.unescape(value) for key, value in
                      re.findall(r"<dd id='(razorpay_[a-z_]+)'>([^<]*)</dd>", response.text)}
            back = "the page's handler gets the signed result"
        else:
            raise StepFailed(f"Pay on the hosted page answered {response.status_code}: {response.text[:200]!r}")
        if "razorpay_payment_id" not in params:
            raise StepFailed(f"the gateway's answer carries no payment id: {response.text[:200]!r}")
        self.facts["callback"] = params
        return f"paid on the hosted page {parts.netloc}{parts.path}: payment {params['razorpay_payment_id']}; {back}"

    def callback(self) -> str:
        if not self.use_callback:
            return "skipped (--skip-callback): the webhook alone must carry the payment"
        params = self.facts["callback"]
        payment = self.call("POST", "/api/v1/payment/verify", {
            "razorpay_order_id": params["razorpay_order_id"],
            "razorpay_payment_id": params["razorpay_payment_id"],
            "razorpay_signature": params["razorpay_signature"],
        })
        return f"signature verified; payment {payment['payment_token']} {payment['status']}"

    def webhook(self) -> str:
        gateway_order_id = self.facts["order"]["payment"]["gateway_order_id"]
        control = f"{self.facts['gateway_base']}/_emulator/webhooks"
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                log = httpx.get(control, params={"order_id": gateway_order_id}, timeout=5, trust_env=False).json()
            except (httpx.HTTPError, ValueError) as exc:
                raise StepFailed(f"cannot read the gateway emulator's webhook log at {control}: {exc}") from None
            events = {e["event"]: e for e in log.get("events", [])}
            captured = events.get("payment.captured")
            if captured and captured.get("state") == "delivered":
                statuses = [a.get("status") for a in captured.get("attempts", [])]
                summary = ", ".join(f"{name} {event.get('state')}" for name, event in events.items())
                return f"payment.captured delivered to {captured.get('url')} (attempts answered {statuses}); events: {summary}"
            answered = [a.get("status") for a in (captured or {}).get("attempts", [])]
            if captured and (captured.get("state") == "failed" or 501 in answered):
                statuses = [a.get("status") or a.get("error") for a in captured.get("attempts", [])]
                hint = " — the webhook endpoint is not implemented yet" if 501 in statuses else ""
                raise StepFailed(f"payment.captured was refused by the edge: attempts answered {statuses}{hint}")
            if time.monotonic() > deadline:
                raise StepFailed(f"no delivered payment.captured webhook after {self.timeout:.0f}s: {json.dumps(log)[:300]}")
            time.sleep(0.1)

    def enrollment(self) -> str:
        token = self.facts["order"]["order_token"]
        deadline = time.monotonic() + self.timeout
        seen: list[str] = []
        while True:
            order = self.call("GET", f"/api/v1/order/{token}")
            if not seen or seen[-1] != order["status"]:
                seen.append(order["status"])
            if order["status"] == "fulfilled" and order.get("enrollment_id"):
                break
            if order["status"] in ("payment_failed", "expired", "cancelled"):
                raise StepFailed(f"order {token} went {' → '.join(seen)}")
            if time.monotonic() > deadline:
                raise StepFailed(f"order {token} still {order['status']} after {self.timeout:.0f}s (went {' → '.join(seen)})")
            time.sleep(0.1)
        listed = self.call("GET", "/api/v1/enrollments")
        mine = [e for e in listed["enrollments"] if e["order_token"] == token]
        if len(mine) != 1:
            raise StepFailed(f"expected one enrollment for order {token}, found {len(mine)}")
        e = mine[0]
        return (f"order {' → '.join(seen)}; enrollment {e['enrollment_id']} {e['status']}, "
                f"{e['starts_at'][:10]} to {e['ends_at'][:10]}")

    def run(self) -> int:
        print(f"checkout demo against {self.url}", flush=True)
        steps: list[tuple[str, Callable[[], str]]] = [
            ("edge", self.health),
            ("catalog", self.catalog),
            ("sign in", self.sign_in),
            ("coupon", self.create_coupon),
            ("cart", self.cart),
            ("apply", self.apply_coupon),
            ("estimate", self.estimate),
            ("order", self.order),
            ("payment", self.pay),
            ("callback", self.callback),
            ("webhook", self.webhook),
            ("enrollment", self.enrollment),
        ]
        try:
            for name, action in steps:
                self.step(name, action)
        except StepFailed as failure:
            print(self._paint(f"demo stopped: {failure}", "31;1"), file=sys.stderr, flush=True)
            return 1
        total = time.perf_counter() - self.started
        print(self._paint(f"done: one whole checkout, cart to enrollment, in {total:.2f} s", "32;1"), flush=True)
        if self.facts.get("trace_id"):
            print(f"its trace: {self.facts['trace_id']} (`make traces` prints its span tree)", flush=True)
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{load_settings().edge_port}", help="the edge (default: EDGE_PORT on 127.0.0.1)")
    parser.add_argument("--plan", default=DEFAULT_PLAN, help="plan id to buy (default: the sample catalog's 3-month backend plan)")
    parser.add_argument("--state", default="KA", help="Indian billing state (default KA: CGST + SGST; MH gives IGST)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the webhook and the enrollment")
    parser.add_argument("--skip-callback", action="store_true",
                        help="do not send the browser's callback (verify): the webhook alone must lead to the enrollment")
    parser.add_argument("--no-color", action="store_true")
    args = parser.parse_args(argv)
    try:
        httpx.get(f"{args.url.rstrip('/')}/healthz", timeout=5, trust_env=False)
    except httpx.HTTPError as exc:
        print(f"cannot reach the edge at {args.url}: {exc}. Start the stack with `make run` first.", file=sys.stderr)
        return 2
    demo = Demo(args.url, plan_id=args.plan, state=args.state.upper(), timeout=args.timeout,
                color=sys.stdout.isatty() and not args.no_color, callback=not args.skip_callback)
    return demo.run()


if __name__ == "__main__":
    sys.exit(main())
