"""Paying or failing a Stripe Checkout Session (its hosted page's buttons, or the control API's
`/_emulator/orders/{cs_…}/pay|fail`), as Stripe does:

- the session's PaymentIntent is made on the first try (amount and currency of the session,
  `payment_intent_data`'s metadata and description) and is charged or declined;
- Pay: the session becomes `complete` / `paid`; webhooks `checkout.session.completed` and
  `payment_intent.succeeded` (one emit, so the reorder / drop / duplicate knobs act on both);
  the browser goes to success_url with `{CHECKOUT_SESSION_ID}` replaced;
- Fail: `payment_intent.payment_failed`; the session stays `open` and takes another try until it
  completes or expires.
"""

from __future__ import annotations

import time
from typing import Any

from .ids import stripe_client_secret, stripe_id
from .settlement import Options, Outcome, Settlement, SettlementError
from .store import CheckoutSession, PaymentIntent, Store
from .stripe_checkout import CheckoutSessions
from .webhooks import WebhookDispatcher

SESSION_ID_TEMPLATE = "{CHECKOUT_SESSION_ID}"


class SessionSettlement:
    def __init__(self, store: Store, sessions: CheckoutSessions, settlement: Settlement,
                 dispatcher: WebhookDispatcher) -> None:
        self._store = store
        self._sessions = sessions
        self._settlement = settlement
        self._dispatcher = dispatcher

    def owns(self, gateway_order_id: str) -> bool:
        return gateway_order_id in self._store.checkout_sessions

    def settle(self, session_id: str, succeed: bool, options: Options) -> Outcome:
        session = self._sessions.get(session_id)
        if session is None:
            raise SettlementError(404, f"no checkout session {session_id!r}")
        if session.status == "complete" and not options.force:
            raise SettlementError(409, "This Checkout Session is already complete (pass force to pay it again)")
        if session.status == "expired":
            raise SettlementError(409, "This Checkout Session has expired")
        intent = self._intent_of(session)
        snapshot, intent_event = self._settlement.stripe_intent_event(intent, succeed, options, order_id=session.id)
        events = [intent_event]
        redirect_url = None
        if succeed:
            session.status, session.payment_status = "complete", "paid"
            completed = self._sessions.event("checkout.session.completed", session, intent.id)
            if options.amount is not None or options.currency:  # mismatch tests: the session says what was taken
                completed = self._with_amount(session, intent, options)
            events.insert(0, completed)
            redirect_url = options.redirect_url or session.success_url.replace(SESSION_ID_TEMPLATE, session.id)
        self._dispatcher.emit("stripe", events)
        return Outcome(
            gateway="stripe", order_id=session.id, payment=snapshot, order=self._sessions.object(session),
            redirect_params={}, redirect_url=redirect_url, events=[event.id for event in events],
        )

    def _intent_of(self, session: CheckoutSession) -> PaymentIntent:
        if session.payment_intent is not None:
            return self._store.payment_intents[session.payment_intent]
        intent_id = stripe_id("pi")
        intent = PaymentIntent(
            id=intent_id, amount=session.amount_total, currency=session.currency,
            metadata=dict(session.intent_metadata), created=int(time.time()),
            client_secret=stripe_client_secret(intent_id), description=session.intent_description,
            payment_method_types=list(session.payment_method_types), return_url=session.success_url,
            request_id=session.request_id,
        )
        self._store.payment_intents[intent.id] = intent
        session.payment_intent = intent.id
        return intent

    def _with_amount(self, session: CheckoutSession, intent: PaymentIntent, options: Options) -> Any:
        saved = (session.amount_total, session.currency)
        session.amount_total = intent.amount_received
        session.currency = (options.currency or session.currency).lower()
        try:
            return self._sessions.event("checkout.session.completed", session, intent.id)
        finally:
            session.amount_total, session.currency = saved
