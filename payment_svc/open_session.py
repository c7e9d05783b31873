"""OpenSession: the payment session of one attempt of an order, opened at most once.

    1. take the attempt's advisory lock (concurrent openers of the attempt wait, bounded)
    2. one transaction, under a lock on the order's token: the attempt's row already has a gateway
       order → return it (a retry); the row is there without one → go on with it; else: the
       order already expired → 2102; another attempt of the order still pending and unexpired →
       2102 (one open session per order); otherwise insert the attempt's row, pending
    3. with no transaction open: create the gateway order with our key "<order>:<attempt>" at
       the preferred gateway; if it is unavailable (breaker open, retries used up) or refuses,
       at the other one
    4. one transaction: store gateway, gateway order id, checkout URL and the expiry (30 minutes
       from now, never past the order's); audit row; event checkout.payment.session_opened
Under the attempt's lock nobody else opens the attempt, so the row read in 2 holds until 4 (bar
the sweeper expiring it, which 4 sees).

payment_svc reads no order: the owner, the amount and the order's expiry come in the request.
A crash anywhere on the way is safe: until step 4 commits, the attempt's row has no gateway
order, so the next call (this process or another) looks the order up by its key at the gateway
before it creates one (tests/integration/payment/test_payment_crash.py). The whole call is
bounded (PAYMENT_OPEN_SESSION_BOUND, 10 s by default, or the caller's gRPC deadline if sooner):
both gateways down → 4001 (retryable) within it.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable

from common.clock import rfc3339, utc_now
from common.errors import CheckoutError, ErrorCode, ValidationFailed
from common.faults import fault_point
from common.money import format_amount, to_minor_units
from common.uow import UnitOfWorkFactory
from payment_svc import payment_events
from payment_svc.commands import OpenSessionCommand
from payment_svc.domain.deadline import Deadline
from payment_svc.domain.gateway_order import gateways_to_try
from payment_svc.domain.session_key import session_key
from payment_svc.domain.sessions import AttemptFacts, other_open_attempt, session_expiry
from payment_svc.gateways.base import CheckoutRequest, GatewayError, GatewayOrder, GatewayRejected
from payment_svc.gateways.metrics import SESSION_FALLBACKS
from payment_svc.gateways.registry import Gateways
from payment_svc.gateways.resilient import MIN_ATTEMPT_S
from payment_svc.repository import NewSession, PaymentRecord, PaymentRepository, SessionLocks
from payment_svc.tuning import SessionTuning

_log = logging.getLogger(__name__)


class SessionOpener:
    def __init__(self, uow: UnitOfWorkFactory, repository: PaymentRepository, locks: SessionLocks, gateways: Gateways,
                 tuning: SessionTuning, clock: Callable[[], datetime.datetime] = utc_now,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._uow = uow
        self._repository = repository
        self._locks = locks
        self._gateways = gateways
        self._tuning = tuning
        self._clock = clock
        self._monotonic = monotonic
        self._ttl = datetime.timedelta(seconds=tuning.session_ttl_s)

    async def open(self, command: OpenSessionCommand, *, caller_deadline_s: float | None = None) -> PaymentRecord:
        bound = self._tuning.open_session_bound_s
        if caller_deadline_s is not None:
            bound = min(bound, caller_deadline_s)
        deadline = Deadline.after(bound, self._monotonic)
        async with self._locks.hold(f"payment-session:{command.order_token}:{command.attempt}",
                                    deadline.remaining()) as locked:
            if not locked:
                raise CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE, "this payment session is being opened by another call")
            row, fresh = await self._record_attempt(command)
            if row.opened:
                return _same_request(row, command)  # a retry, or the call we waited for opened it
            return await self._open_locked(command, row, deadline, fresh=fresh)

    async def _record_attempt(self, command: OpenSessionCommand) -> tuple[PaymentRecord, bool]:
        """The attempt's row, inserted unless it is there; True if this call inserted it."""
        async with self._uow() as uow:
            await self._repository.lock_order(uow.conn, command.order_token)
            sessions = await self._repository.sessions_of(uow.conn, command.order_token)
            own = next((session for session in sessions if session.attempt == command.attempt), None)
            if own is not None:
                await uow.commit()  # nothing written: a commit ends it without a ROLLBACK (common/uow.py)
                return own, False
            now = self._clock()
            if command.order_expires_at <= now:
                raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, "the order has expired: it takes no payment")
            blocking = other_open_attempt(command.attempt, [AttemptFacts(session.attempt, session.status,
                                                                         session.expires_at) for session in sessions],
                                          now)
            if blocking is not None:
                raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, f"a payment session of this order is still open "
                                    f"(attempt {blocking}): pay it, or wait until it fails or expires")
            inserted = await self._repository.insert_pending(uow.conn, NewSession(
                order_token=command.order_token, attempt=command.attempt, user_id=command.user_id,
                gateway=command.gateway, payment_method=command.payment_method, amount=command.amount,
                currency=command.currency, expires_at=session_expiry(now, self._ttl, command.order_expires_at),
                order_expires_at=command.order_expires_at))
            assert inserted is not None, "the attempt's row appeared under the order's lock"
            await uow.commit()
            return inserted, True

    async def _open_locked(self, command: OpenSessionCommand, row: PaymentRecord, deadline: Deadline, *,
                           fresh: bool) -> PaymentRecord:
        """`row`: the attempt's row, not opened, read under the attempt's lock (nobody else can open
        it meanwhile). `fresh`: this call recorded the attempt, so no gateway create for it was
        ever sent."""
        _same_request(row, command)
        now = self._clock()
        if row.order_expires_at <= now:
            raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, "the order has expired: it takes no payment")
        if row.status != "pending" or row.expires_at <= now:
            raise CheckoutError(ErrorCode.PAYMENT_SESSION_EXPIRED, "this payment attempt expired before a gateway answered")
        order = await self._create_at_a_gateway(command, checkout_request(command, row), deadline, fresh=fresh)
        fault_point("payment_after_gateway_create")  # crash tests: the gateway has the order, we have not noted it
        async with self._uow() as uow:
            now = self._clock()  # the 30 minutes run from when the session opened at the gateway
            expires_at = session_expiry(now, self._ttl, row.order_expires_at)
            # Under the attempt's lock nobody else notes a gateway order; the row is as read above
            # unless the sweeper expired it meanwhile: then under its row lock, as it is now.
            locked = row
            opened = await self._repository.mark_opened(
                uow.conn, row.token, gateway=order.gateway, gateway_order_id=order.gateway_order_id,
                checkout_url=order.checkout_url, now=now, expires_at=expires_at, if_status=row.status)
            if opened is None:
                found = await self._repository.by_attempt(uow.conn, command.order_token, command.attempt,
                                                          for_update=True)
                assert found is not None and not found.opened
                locked = found
                opened = await self._repository.mark_opened(
                    uow.conn, locked.token, gateway=order.gateway, gateway_order_id=order.gateway_order_id,
                    checkout_url=order.checkout_url, now=now, expires_at=expires_at)
                assert opened is not None
            uow.audit(actor=command.user_id, entity_type="payment", entity_id=opened.token, action="session_opened",
                      before={"status": locked.status, "gateway_order_id": None},
                      after={"order_token": opened.order_token, "attempt": opened.attempt, "gateway": opened.gateway,
                             "preferred_gateway": command.gateway, "gateway_order_id": opened.gateway_order_id,
                             "amount": format_amount(opened.amount), "currency": opened.currency,
                             "expires_at": rfc3339(opened.expires_at)})
            payment_events.publish_payment_event(uow, payment_events.SESSION_OPENED, opened, now)
            await uow.commit()
        return opened

    async def _create_at_a_gateway(self, command: OpenSessionCommand, request: CheckoutRequest, deadline: Deadline, *,
                                   fresh: bool) -> GatewayOrder:
        failures: list[GatewayError] = []
        for name in gateways_to_try(command.gateway):
            if deadline.remaining() < MIN_ATTEMPT_S:
                break
            try:
                order = await self._gateways[name].create_order(request, deadline=deadline, may_exist=not fresh)
            except GatewayError as error:
                _log.warning("gateway could not open a session", extra={"gateway": name, "error": error.message,
                                                                         "order_token": command.order_token})
                failures.append(error)
                continue
            if name != command.gateway:
                SESSION_FALLBACKS.labels(command.gateway, name).inc()
            return order
        summary = "; ".join(f"{error.gateway}: {error.message}" for error in failures) or "no time left"
        if failures and all(isinstance(error, GatewayRejected) for error in failures):
            raise CheckoutError(ErrorCode.PAYMENT_FAILED, f"the payment gateways refused to open a session ({summary})",
                                suggested_action="contact support with the correlation id")
        raise CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE, f"no payment gateway is available ({summary})")


def checkout_request(command: OpenSessionCommand, row: PaymentRecord) -> CheckoutRequest:
    """What the gateways are asked for this attempt: from its stored row where the row knows, so a
    retry of the attempt asks for exactly the same."""
    return CheckoutRequest(
        key=session_key(command.order_token, command.attempt), payment_token=row.token, order_token=row.order_token,
        amount_minor=to_minor_units(row.amount), currency=row.currency,
        description=command.description or f"Order {command.order_token}", expires_at=row.expires_at,
        created_at=row.created_at, return_url=command.return_url, cancel_url=command.cancel_url,
        payment_method=row.payment_method or "")


def _same_request(session: PaymentRecord, command: OpenSessionCommand) -> PaymentRecord:
    """A retry must ask for what the attempt was opened with; another amount is a new attempt."""
    if (session.amount, session.currency) != (command.amount, command.currency):
        raise ValidationFailed([f"amount: attempt {session.attempt} of this order is for "
                                f"{format_amount(session.amount)} {session.currency}; open a new attempt"])
    return session
