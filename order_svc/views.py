"""What order_svc's use cases return and what order_svc learns from the services it calls: plain
values, spelled as on the wire (money as two-place decimal strings, RFC 3339 times), so that
api.py only copies them into messages and a stored idempotent answer replays exactly."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from common.clock import rfc3339
from common.money import format_amount
from order_svc.domain.invoices import order_number
from order_svc.repository import OrderRecord


@dataclasses.dataclass(frozen=True)
class PaymentView:
    """A payment session as payment_svc described it (checkout.v1.PaymentSession)."""

    payment_token: str
    gateway: str = ""
    gateway_order_id: str = ""
    checkout_url: str = ""
    status: str = ""
    amount: str = ""
    currency: str = ""
    expires_at: str = ""
    order_token: str = ""
    key_id: str = ""  # the gateway's publishable key (the browser opens the gateway's checkout with it)
    payment_method: str = ""

    def as_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> PaymentView:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: str(value) for name, value in stored.items() if name in names})

    def updated(self, other: PaymentView) -> PaymentView:
        """This view with what `other` (a later word on the same session) says; empty fields keep
        what was known."""
        return dataclasses.replace(self, **other.known())

    def known(self) -> dict[str, str]:
        """The fields this view says something about (the non-empty ones)."""
        return {name: value for name, value in dataclasses.asdict(self).items() if value}


@dataclasses.dataclass(frozen=True)
class TaxView:
    name: str
    rate: str
    amount: str


@dataclasses.dataclass(frozen=True)
class OrderView:
    order_token: str
    cart_token: str
    user_id: str
    status: str
    currency: str
    subtotal: str
    discount_amount: str
    tax_amount: str
    total: str
    taxes: tuple[TaxView, ...]
    payment: PaymentView | None
    created_at: str
    enrollment_id: str
    discount_code: str
    exchange_rate: str
    updated_at: str
    order_number: str = ""  # answers stored before order numbers existed have none
    refunded_amount: str = "0.00"  # answers stored before refunds existed have none

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> OrderView:
        values = dict(stored)
        values["taxes"] = tuple(TaxView(**tax) for tax in values["taxes"])
        values["payment"] = None if values["payment"] is None else PaymentView.from_json(values["payment"])
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A cart converted for an order, as cart_svc priced it (checkout.internal.v1.ConvertedCart):
    the order is made of exactly this."""

    order_token: str  # the order that converted the cart: may be another than the one asked for
    cart_token: str
    user_id: str
    currency: str
    exchange_rate: str
    lines: tuple[dict[str, Any], ...]  # checkout.internal.v1.OrderLine as JSON (proto field names)
    subtotal: str
    discount_code: str
    discount_amount: str
    taxes: tuple[TaxView, ...]
    tax_amount: str
    total: str
    billing: dict[str, str]
    converted_at: str


@dataclasses.dataclass(frozen=True)
class SessionRequest:
    """What payment_svc needs to open one attempt's session (it reads no order)."""

    order_token: str
    attempt: int
    user_id: str
    amount: str
    currency: str
    gateway: str
    payment_method: str
    return_url: str
    cancel_url: str
    description: str
    order_expires_at: str


@dataclasses.dataclass(frozen=True)
class Released:
    coupon_released: bool
    cart_reopened: bool


def order_view(order: OrderRecord) -> OrderView:
    """The view of an order, from order_svc's own row (`payment`: the session view stored on it)."""
    return OrderView(
        order_token=order.order_token, cart_token=order.cart_token, user_id=order.user_id, status=order.status,
        currency=order.currency, subtotal=format_amount(order.subtotal),
        discount_amount=format_amount(order.discount_amount), tax_amount=format_amount(order.tax_amount),
        total=format_amount(order.total),
        taxes=tuple(TaxView(tax["name"], tax["rate"], tax["amount"]) for tax in order.taxes),
        payment=None if order.payment is None else PaymentView.from_json(order.payment),
        created_at=rfc3339(order.created_at),
        enrollment_id=order.enrollment_ids[0] if order.enrollment_ids else "",  # the contract's one id: the first
        discount_code=order.discount_code or "",
        exchange_rate=format(order.exchange_rate.normalize(), "f"),
        updated_at=rfc3339(order.updated_at),
        order_number=order_number(order.order_number, order.created_at) if order.order_number else "",
        refunded_amount=format_amount(order.refunded_amount),
    )
