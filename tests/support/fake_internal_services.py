"""In-memory stand-ins for the internal RPCs order_svc calls: cart_svc's CartCheckout and
payment_svc's PaymentSessions, each as a plain-value core (the unit tests' fake client: the same
methods as order_svc.clients.CartCheckout / PaymentSessions) and as a gRPC servicer of the
internal protos around that core (the integration tests serve it in-process).

They keep the contracts of proto/checkout/internal/v1 that order_svc relies on: ConvertCart is
idempotent on the order token, answers the first order's token and snapshot when this user's
order already converted the cart, refuses all or nothing; ReleaseCart is idempotent;
OpenSession is idempotent per (order, attempt) and refuses attempt n > 1 (2102) while an earlier
attempt is open. The real services replace them in the crash tests and at merge.

Faults: `unavailable` answers that many calls with a bare UNAVAILABLE (no ErrorDetail: the
callee "down"), `delay` holds each call that long, `refusal` refuses every conversion with that
error (nothing is taken).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import Any

import grpc
from google.protobuf import json_format

from checkout.internal.v1 import (
    cart_checkout_pb2,
    cart_checkout_pb2_grpc,
    payment_sessions_pb2,
    payment_sessions_pb2_grpc,
)
from checkout.v1 import common_pb2, order_pb2
from common.clock import rfc3339, utc_now
from common.errors import CheckoutError, ErrorCode
from common.settings import Settings
from order_svc.views import PaymentView, Released, SessionRequest, Snapshot, TaxView
from tests.support.grpc_servers import serving_at

BACKEND = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000001"
PLAN_1M = "7a1e0000-0000-4000-8000-000000000101"
PLAN_3M = "7a1e0000-0000-4000-8000-000000000103"


def line(line_no: int = 1, *, plan_id: str = PLAN_3M, internship_id: str = BACKEND, price: str = "3999.00",
         quantity: int = 1, months: int = 3, title: str = "Backend internship") -> dict[str, Any]:
    """One checkout.internal.v1.OrderLine as JSON (proto field names, zero values printed)."""
    total = f"{Decimal(price) * quantity:.2f}"
    return {"line_no": line_no, "internship_id": internship_id, "plan_id": plan_id, "title": title,
            "period": {"value": months, "unit": "month"}, "quantity": quantity, "unit_price": price,
            "unit_price_inr": price, "line_total": total}


@dataclasses.dataclass
class FakeCartState:
    token: str
    user_id: str  # empty: a guest cart (whoever converts it owns it)
    template: Snapshot  # what a conversion answers (order token, owner and time filled in)
    empty: bool = False
    converted_by: str | None = None  # the order token that holds the conversion
    coupon: str = ""


class FakeCartCheckout:
    """cart_svc's CartCheckout, in memory."""

    def __init__(self) -> None:
        self.carts: dict[str, FakeCartState] = {}
        self.conversions: dict[str, Snapshot] = {}  # order token → the snapshot it converted
        self.redemptions: dict[str, str] = {}  # order token → "held" | "released"
        self.coupon_limits: dict[str, int] = {}
        self.calls: list[tuple[str, str]] = []  # (rpc, order token)
        self.released: list[tuple[str, bool, str]] = []
        self.unavailable = 0
        self.delay = 0.0
        self.refusal: CheckoutError | None = None
        # set `hold_answers` to keep ConvertCart's answer (after the conversion is made) until it is set;
        # `answer_held` tells the test that a conversion is waiting there
        self.hold_answers: asyncio.Event | None = None
        self.answer_held = asyncio.Event()

    def add_cart(self, *, user_id: str = "", lines: Sequence[dict[str, Any]] | None = None, currency: str = "INR",
                 exchange_rate: str = "1", subtotal: str = "3999.00", discount_code: str = "",
                 discount_amount: str = "0.00", taxes: Sequence[TaxView] = (TaxView("IGST", "18", "719.82"),),
                 tax_amount: str = "719.82", total: str = "4718.82", billing: dict[str, str] | None = None,
                 empty: bool = False) -> str:
        token = str(uuid.uuid4())
        template = Snapshot(order_token="", cart_token=token, user_id=user_id, currency=currency,
                            exchange_rate=exchange_rate, lines=tuple(lines if lines is not None else [line()]),
                            subtotal=subtotal, discount_code=discount_code, discount_amount=discount_amount,
                            taxes=tuple(taxes), tax_amount=tax_amount, total=total,
                            billing=dict(billing or {"country": "", "state": ""}), converted_at="")
        self.carts[token] = FakeCartState(token, user_id, template, empty=empty, coupon=discount_code)
        return token

    def cart_of(self, order_token: str) -> FakeCartState | None:
        snapshot = self.conversions.get(order_token)
        return None if snapshot is None else self.carts[snapshot.cart_token]

    def held(self, code: str) -> int:
        return sum(1 for token, state in self.redemptions.items()
                   if state == "held" and self.conversions[token].discount_code == code)

    async def _enter(self, rpc: str, order_token: str) -> None:
        self.calls.append((rpc, order_token))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.unavailable > 0:
            self.unavailable -= 1
            raise Unavailable()

    async def convert(self, *, cart_token: str, order_token: str, user_id: str, billing: dict[str, str]) -> Snapshot:
        await self._enter("ConvertCart", order_token)
        # from here on no await: one conversion at a time, as the cart's row lock makes it in cart_svc
        if order_token in self.conversions:
            return self.conversions[order_token]
        cart = self.carts.get(cart_token)
        if cart is None:
            raise CheckoutError(ErrorCode.CART_NOT_FOUND)
        if cart.user_id and cart.user_id != user_id:
            raise CheckoutError(ErrorCode.NOT_ALLOWED, "this cart belongs to another user")
        if cart.converted_by is not None:
            first = self.conversions[cart.converted_by]
            if first.user_id == user_id:
                return first  # a double submit: the first order is the answer
            raise CheckoutError(ErrorCode.CART_CONVERTED)
        if cart.empty:
            raise CheckoutError(ErrorCode.CART_EMPTY)
        if self.refusal is not None:
            raise self.refusal
        if cart.coupon and self.held(cart.coupon) >= self.coupon_limits.get(cart.coupon, 1 << 30):
            raise CheckoutError(ErrorCode.INVALID_COUPON, validation_messages=["code: coupon redemption limit reached"])
        snapshot = dataclasses.replace(cart.template, order_token=order_token, user_id=user_id,
                                       billing=dict(billing) if billing else dict(cart.template.billing),
                                       converted_at=rfc3339(utc_now()))
        cart.converted_by = order_token
        cart.user_id = user_id
        self.conversions[order_token] = snapshot
        if cart.coupon:
            self.redemptions[order_token] = "held"
        if self.hold_answers is not None:
            self.answer_held.set()
            await self.hold_answers.wait()
        return snapshot

    async def release(self, *, order_token: str, reopen_cart: bool, reason: str) -> Released:
        await self._enter("ReleaseCart", order_token)
        self.released.append((order_token, reopen_cart, reason))
        coupon_released = self.redemptions.get(order_token) == "held"
        if coupon_released:
            self.redemptions[order_token] = "released"
        cart = self.cart_of(order_token)
        reopened = bool(reopen_cart and cart is not None and cart.converted_by == order_token)
        if reopened and cart is not None:
            cart.converted_by = None
        return Released(coupon_released, reopened)


class FakePaymentSessions:
    """payment_svc's PaymentSessions, in memory: one "gateway order" per (order, attempt)."""

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, int], PaymentView] = {}
        self.requests: list[SessionRequest] = []
        self.unavailable = 0
        self.delay = 0.0
        self.refusal: CheckoutError | None = None

    async def open_session(self, request: SessionRequest) -> PaymentView:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.unavailable > 0:
            self.unavailable -= 1
            raise Unavailable()
        found = self.sessions.get((request.order_token, request.attempt))
        if found is not None:
            return found
        if self.refusal is not None:
            raise self.refusal
        if any(token == request.order_token and attempt < request.attempt and view.status == "pending"
               for (token, attempt), view in self.sessions.items()):
            raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, "a payment session of this order is still open",
                                suggested_action="pay with the open session, or wait until it expires")
        gateway_order_id = f"order_{uuid.uuid4().hex[:14]}"
        expires = min(utc_now() + datetime.timedelta(minutes=30),
                      datetime.datetime.fromisoformat(request.order_expires_at.replace("Z", "+00:00")))
        view = PaymentView(payment_token=str(uuid.uuid4()), gateway=request.gateway, gateway_order_id=gateway_order_id,
                           checkout_url=f"https://gateway.example/checkout/{gateway_order_id}", status="pending",
                           amount=request.amount, currency=request.currency, expires_at=rfc3339(expires),
                           order_token=request.order_token)
        self.sessions[(request.order_token, request.attempt)] = view
        return view

    def gateway_orders(self, order_token: str) -> list[PaymentView]:
        return [view for (token, _), view in sorted(self.sessions.items()) if token == order_token]

    def set_status(self, order_token: str, attempt: int, status: str) -> PaymentView:
        view = dataclasses.replace(self.sessions[(order_token, attempt)], status=status)
        self.sessions[(order_token, attempt)] = view
        return view


class Unavailable(CheckoutError):
    """The fake callee is "down": its servicer answers a bare UNAVAILABLE (no ErrorDetail), and a
    unit test calling the core directly sees what order_svc's client raises when it gives up."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.GATEWAY_UNAVAILABLE, "fake callee unavailable")


# -- the gRPC servicers around the cores ---------------------------------------------------------------
async def _answer(context: grpc.aio.ServicerContext, call: Callable[[], Any]) -> Any:
    try:
        return await call()
    except Unavailable:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "fake callee unavailable")


class CartCheckoutServicer(cart_checkout_pb2_grpc.CartCheckoutServicer):
    def __init__(self, core: FakeCartCheckout) -> None:
        self.core = core

    async def ConvertCart(self, request: cart_checkout_pb2.ConvertCartRequest,
                          context: grpc.aio.ServicerContext) -> cart_checkout_pb2.ConvertedCart:
        billing = {"country": request.billing.country, "state": request.billing.state} if request.billing.country else {}
        snapshot = await _answer(context, lambda: self.core.convert(
            cart_token=request.cart_token, order_token=request.order_token, user_id=request.user_id, billing=billing))
        return converted_cart(snapshot)

    async def ReleaseCart(self, request: cart_checkout_pb2.ReleaseCartRequest,
                          context: grpc.aio.ServicerContext) -> cart_checkout_pb2.ReleaseCartResponse:
        released = await _answer(context, lambda: self.core.release(
            order_token=request.order_token, reopen_cart=request.reopen_cart, reason=request.reason))
        return cart_checkout_pb2.ReleaseCartResponse(coupon_released=released.coupon_released,
                                                     cart_reopened=released.cart_reopened)


class PaymentSessionsServicer(payment_sessions_pb2_grpc.PaymentSessionsServicer):
    def __init__(self, core: FakePaymentSessions) -> None:
        self.core = core

    async def OpenSession(self, request: payment_sessions_pb2.OpenSessionRequest,
                          context: grpc.aio.ServicerContext) -> order_pb2.PaymentSession:
        view = await _answer(context, lambda: self.core.open_session(SessionRequest(
            order_token=request.order_token, attempt=request.attempt, user_id=request.user_id, amount=request.amount,
            currency=request.currency, gateway=request.gateway, payment_method=request.payment_method,
            return_url=request.return_url, cancel_url=request.cancel_url, description=request.description,
            order_expires_at=request.order_expires_at)))
        return order_pb2.PaymentSession(**dataclasses.asdict(view))


def converted_cart(snapshot: Snapshot) -> cart_checkout_pb2.ConvertedCart:
    return cart_checkout_pb2.ConvertedCart(
        order_token=snapshot.order_token, cart_token=snapshot.cart_token, user_id=snapshot.user_id,
        currency=snapshot.currency, exchange_rate=snapshot.exchange_rate,
        lines=[json_format.ParseDict(entry, cart_checkout_pb2.OrderLine()) for entry in snapshot.lines],
        subtotal=snapshot.subtotal, discount_code=snapshot.discount_code, discount_amount=snapshot.discount_amount,
        taxes=[common_pb2.TaxLine(name=tax.name, rate=tax.rate, amount=tax.amount) for tax in snapshot.taxes],
        tax_amount=snapshot.tax_amount, total=snapshot.total, billing=common_pb2.Billing(**snapshot.billing),
        converted_at=snapshot.converted_at)


@dataclasses.dataclass
class FakeServices:
    cart: FakeCartCheckout
    payments: FakePaymentSessions
    cart_address: str
    payment_address: str


@contextlib.asynccontextmanager
async def fake_internal_services(settings: Settings) -> AsyncIterator[FakeServices]:
    """Both fakes served over real gRPC on free ports (with the services' own interceptor, so a
    CheckoutError reaches order_svc as the ErrorDetail a real callee would send)."""
    cart, payments = FakeCartCheckout(), FakePaymentSessions()

    def register_cart(server: grpc.aio.Server) -> list[str]:
        cart_checkout_pb2_grpc.add_CartCheckoutServicer_to_server(CartCheckoutServicer(cart), server)
        return [cart_checkout_pb2.DESCRIPTOR.services_by_name["CartCheckout"].full_name]

    def register_payments(server: grpc.aio.Server) -> list[str]:
        payment_sessions_pb2_grpc.add_PaymentSessionsServicer_to_server(PaymentSessionsServicer(payments), server)
        return [payment_sessions_pb2.DESCRIPTOR.services_by_name["PaymentSessions"].full_name]

    async with serving_at(settings, register_cart) as (cart_address, _), \
            serving_at(settings, register_payments) as (payment_address, _):
        yield FakeServices(cart, payments, cart_address, payment_address)
