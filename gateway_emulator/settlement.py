"""What happens when the customer presses Pay or Fail (on the page or through the control API):
the payment is recorded, the redirect parameters are computed, the webhooks are queued."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .config import EmulatorConfig
from .ids import razorpay_id, stripe_id, stripe_request_id
from .razorpay_entities import order_entity, payment_entity
from .razorpay_events import razorpay_event
from .signing import razorpay_payment_signature
from .store import PaymentIntent, RazorpayOrder, RazorpayPayment, Store, StripeCharge
from .stripe_events import stripe_event
from .stripe_objects import card_declined, payment_intent_object
from .webhooks import WebhookDispatcher, WebhookEvent

METHODS = ("card", "upi", "netbanking", "wallet")


class SettlementError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Options:
    """Knobs of one payment (control API body / page form); all optional."""

    method: str = "card"
    amount: int | None = None  # capture another amount than the order's (mismatch tests)
    currency: str | None = None
    force: bool = False  # allow paying an order that is already paid (double payment)
    error_code: str | None = None
    error_description: str | None = None
    redirect_url: str | None = None  # overrides the stored callback/return URL

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Options:
        known = set(cls.__dataclass_fields__)
        unknown = set(body) - known
        if unknown:
            raise SettlementError(
                400, f"unknown option(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        options = cls(**body)
        if options.method not in METHODS:
            raise SettlementError(400, f"method must be one of {METHODS}")
        if options.amount is not None and (
            isinstance(options.amount, bool) or not isinstance(options.amount, int)
        ):
            raise SettlementError(400, "amount must be an integer in minor units")
        return options


@dataclass
class Outcome:
    gateway: str
    order_id: str
    payment: dict[str, Any]  # Razorpay payment entity, or the Stripe PaymentIntent
    order: dict[str, Any] | None  # the Razorpay order entity after the payment
    redirect_params: dict[str, str]
    redirect_url: str | None
    events: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway,
            "order_id": self.order_id,
            "payment": self.payment,
            "order": self.order,
            "redirect_params": self.redirect_params,
            "redirect_url": self.redirect_url,
            "webhook_event_ids": self.events,
        }


class Settlement:
    def __init__(self, config: EmulatorConfig, store: Store, dispatcher: WebhookDispatcher) -> None:
        self._config = config
        self._store = store
        self._dispatcher = dispatcher
        self.others: list[Any] = []  # settlers of other objects (Stripe Checkout Sessions)

    def settle(self, gateway_order_id: str, succeed: bool, options: Options) -> Outcome:
        for other in self.others:
            if other.owns(gateway_order_id):
                return other.settle(gateway_order_id, succeed, options)
        if gateway_order_id in self._store.razorpay_orders:
            order = self._store.razorpay_orders[gateway_order_id]
            return self._razorpay(order, succeed, options)
        if gateway_order_id in self._store.payment_intents:
            intent = self._store.payment_intents[gateway_order_id]
            return self._stripe(intent, succeed, options)
        raise SettlementError(404, f"no order or payment intent {gateway_order_id!r}")

    # ---- Razorpay ------------------------------------------------------------------------
    def _razorpay(self, order: RazorpayOrder, succeed: bool, options: Options) -> Outcome:
        if order.status == "paid" and not options.force:
            raise SettlementError(409, "Order has already been paid (pass force to pay it again)")
        payment = RazorpayPayment(
            id=razorpay_id("pay"),
            order_id=order.id,
            amount=options.amount if options.amount is not None else order.amount,
            currency=options.currency or order.currency,
            status="captured" if succeed else "failed",
            method=options.method,
            created_at=int(time.time()),
        )
        if not succeed:
            payment.error_code = options.error_code or "BAD_REQUEST_ERROR"
            payment.error_description = options.error_description or "Payment failed"
            payment.error_source = "customer"
            payment.error_step = "payment_authorization"
            payment.error_reason = "payment_failed"
        self._store.razorpay_payments[payment.id] = payment
        order.payment_ids.append(payment.id)
        order.attempts += 1
        if succeed:
            order.amount_paid = min(order.amount_paid + payment.amount, order.amount)
            order.status = "paid"
        elif order.status == "created":
            order.status = "attempted"
        account = self._config.razorpay_account_id
        if succeed:
            specs = [("payment.captured", None), ("order.paid", order)]
        else:
            specs = [("payment.failed", None)]
        events = []
        for name, with_order in specs:
            event_id, body = razorpay_event(name, account, payment, with_order)
            events.append(WebhookEvent(event_id, "razorpay", name, body, order.id, payment.id))
        self._dispatcher.emit("razorpay", events)
        if succeed:
            params = {
                "razorpay_payment_id": payment.id,
                "razorpay_order_id": order.id,
                "razorpay_signature": razorpay_payment_signature(
                    self._config.razorpay_key_secret, order.id, payment.id
                ),
            }
        else:
            params = {
                "error[code]": payment.error_code or "",
                "error[description]": payment.error_description or "",
                "error[source]": payment.error_source or "",
                "error[step]": payment.error_step or "",
                "error[reason]": payment.error_reason or "",
                "error[metadata]": json.dumps({"payment_id": payment.id, "order_id": order.id}),
            }
        return Outcome(
            gateway="razorpay",
            order_id=order.id,
            payment=payment_entity(payment),
            order=order_entity(order),
            redirect_params=params,
            redirect_url=options.redirect_url or order.callback_url,
            events=[e.id for e in events],
        )

    # ---- Stripe --------------------------------------------------------------------------
    def _stripe(self, intent: PaymentIntent, succeed: bool, options: Options) -> Outcome:
        snapshot, event = self.stripe_intent_event(intent, succeed, options)
        self._dispatcher.emit("stripe", [event])
        return Outcome(
            gateway="stripe",
            order_id=intent.id,
            payment=snapshot,
            order=None,
            redirect_params={
                "payment_intent": intent.id,
                "payment_intent_client_secret": intent.client_secret,
                "redirect_status": "succeeded" if succeed else "failed",
            },
            redirect_url=options.redirect_url or intent.return_url,
            events=[event.id],
        )

    def stripe_intent_event(
        self, intent: PaymentIntent, succeed: bool, options: Options, order_id: str | None = None
    ) -> tuple[dict[str, Any], WebhookEvent]:
        """Charge the intent (or fail it); its snapshot and its webhook event, not sent yet."""
        if intent.status == "succeeded" and not options.force:
            raise SettlementError(
                409,
                "This PaymentIntent's status is succeeded, so it cannot be confirmed again "
                "(pass force to pay it again)",
            )
        charge = StripeCharge(
            id=stripe_id("ch"),
            status="succeeded" if succeed else "failed",
            payment_method_id=stripe_id("pm"),
            created=int(time.time()),
        )
        intent.charges.append(charge)
        if succeed:
            intent.status = "succeeded"
            intent.amount_received = options.amount if options.amount is not None else intent.amount
            intent.last_payment_error = None
            event_type = "payment_intent.succeeded"
        else:
            intent.status = "requires_payment_method"
            error = card_declined(charge.payment_method_id)
            if options.error_code:
                error["code"] = options.error_code
            if options.error_description:
                error["message"] = options.error_description
            intent.last_payment_error = error
            event_type = "payment_intent.payment_failed"
        snapshot = payment_intent_object(intent)
        if options.currency:
            snapshot["currency"] = options.currency.lower()
        event_id, body = stripe_event(
            event_type,
            snapshot,
            api_version=self._config.stripe_api_version,
            request_id=stripe_request_id(),
            idempotency_key=None,
        )
        return snapshot, WebhookEvent(event_id, "stripe", event_type, body, order_id or intent.id, charge.id)
