"""OpenSession: the payment session of one attempt of an order, opened at most once.

    1. the attempt's row already has a gateway order → return it (a retry)
    2. check the order (exists, may still be paid, amount = its total); insert the attempt's
       row, pending, ON CONFLICT DO NOTHING
    3. take the attempt's advisory lock (concurrent openers wait, bounded), read the row again
    4. with no transaction open: create the gateway order with our key "<order>:<attempt>" at
       the preferred gateway; if it is unavailable (breaker open, retries used up) or refuses,
       at the other one
    5. one transaction: store gateway, gateway order id, checkout URL; audit row; outbox event
       checkout.payment.session_opened

The whole call is bounded (PaymentSettings.open_session_bound_s, 10 s by default, or the
caller's gRPC deadline if sooner): both gateways down → 4001 (retryable) within it.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.audit import append_audit
from common.clock import rfc3339, utc_now
from common.errors import CheckoutError, ErrorCode, ValidationFailed
from common.money import format_amount, to_minor_units
from common.outbox import add_event
from order_svc import order_repository
from order_svc.domain.order_status import MAY_BE_PAID
from payment_svc import payment_repository, session_lock
from payment_svc.commands import OpenSessionCommand
from payment_svc.domain.deadline import Deadline
from payment_svc.domain.gateway_order import gateways_to_try
from payment_svc.domain.session_key import session_key
from payment_svc.gateways.base import GatewayError, GatewayOrder, GatewayRejected
from payment_svc.gateways.metrics import SESSION_FALLBACKS
from payment_svc.gateways.registry import Gateways
from payment_svc.gateways.resilient import MIN_ATTEMPT_S
from payment_svc.payment_repository import PaymentRecord
from payment_svc.settings import PaymentSettings

_log = logging.getLogger(__name__)


class SessionOpener:
    def __init__(self, engine: AsyncEngine, gateways: Gateways, settings: PaymentSettings,
                 clock: Callable[[], datetime.datetime] = utc_now,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._gateways = gateways
        self._settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self._ttl = datetime.timedelta(seconds=settings.session_ttl_s)

    async def open(self, command: OpenSessionCommand, *, caller_deadline_s: float | None = None) -> PaymentRecord:
        bound = self._settings.open_session_bound_s
        if caller_deadline_s is not None:
            bound = min(bound, caller_deadline_s)
        deadline = Deadline.after(bound, self._monotonic)
        async with self._engine.connect() as conn:
            async with conn.begin():
                existing = await payment_repository.by_attempt(conn, command.order_token, command.attempt)
            if existing is not None and existing.opened:
                return _same_request(existing, command)
            async with conn.begin():
                await self._check_order(conn, command)
                fresh = await payment_repository.insert_pending(
                    conn, order_token=command.order_token, attempt=command.attempt, gateway=command.gateway,
                    amount=command.amount, currency=command.currency,
                    expires_at=self._clock() + self._ttl)
            if not await session_lock.acquire(conn, command.order_token, command.attempt, deadline):
                raise CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE, "this payment session is being opened by another call")
            try:
                return await self._open_locked(conn, command, deadline, fresh=fresh)
            finally:
                await session_lock.release(conn, command.order_token, command.attempt)

    async def _open_locked(self, conn: AsyncConnection, command: OpenSessionCommand, deadline: Deadline, *,
                           fresh: bool) -> PaymentRecord:
        """`fresh`: this call recorded the attempt, so no gateway create for it was ever sent."""
        async with conn.begin():
            row = await payment_repository.by_attempt(conn, command.order_token, command.attempt)
        assert row is not None
        if row.opened:
            return _same_request(row, command)  # the call we waited for opened it
        _same_request(row, command)
        if row.status != "pending":
            raise CheckoutError(ErrorCode.PAYMENT_SESSION_EXPIRED, "this payment attempt expired before a gateway answered")
        order = await self._create_at_a_gateway(command, deadline, fresh=fresh)
        async with conn.begin():
            locked = await payment_repository.by_attempt(conn, command.order_token, command.attempt, for_update=True)
            assert locked is not None and not locked.opened
            now = self._clock()  # the 30 minutes run from when the session opened at the gateway
            opened = await payment_repository.mark_opened(conn, locked.token, gateway=order.gateway,
                                                          gateway_order_id=order.gateway_order_id,
                                                          checkout_url=order.checkout_url, now=now,
                                                          expires_at=now + self._ttl)
            await self._record_opened(conn, opened, command)
        return opened

    async def _create_at_a_gateway(self, command: OpenSessionCommand, deadline: Deadline, *, fresh: bool) -> GatewayOrder:
        key = session_key(command.order_token, command.attempt)
        failures: list[GatewayError] = []
        for name in gateways_to_try(command.gateway):
            if deadline.remaining() < MIN_ATTEMPT_S:
                break
            try:
                order = await self._gateways[name].create_order(
                    key, to_minor_units(command.amount), command.currency, command.return_url,
                    command.description or f"Order {command.order_token}", deadline=deadline, may_exist=not fresh)
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

    async def _check_order(self, conn: AsyncConnection, command: OpenSessionCommand) -> None:
        order = await order_repository.get_order(conn, command.order_token)
        if order is None:
            raise CheckoutError(ErrorCode.ORDER_NOT_FOUND)
        if command.user_id and command.user_id != order.user_id:
            raise CheckoutError(ErrorCode.NOT_ALLOWED, "this order belongs to another user")
        if order.status not in MAY_BE_PAID or self._clock() >= order.expires_at:
            raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, f"the order is {order.status}: it takes no payment")
        if (command.amount, command.currency) != (order.total, order.currency):
            raise ValidationFailed([f"amount: must be the order total {format_amount(order.total)} {order.currency}"])

    async def _record_opened(self, conn: AsyncConnection, session: PaymentRecord, command: OpenSessionCommand) -> None:
        facts = {"attempt": session.attempt, "gateway": session.gateway, "preferred_gateway": command.gateway,
                 "gateway_order_id": session.gateway_order_id, "amount": format_amount(session.amount),
                 "currency": session.currency, "expires_at": rfc3339(session.expires_at)}
        await append_audit(conn, actor=command.user_id or "payment_svc", entity_type="payment", entity_id=session.token,
                           action="session_opened", before=None, after={"order_token": session.order_token, **facts})
        await add_event(conn, subject="checkout.payment.session_opened", aggregate_id=session.order_token,
                        payload={"order_token": session.order_token, "payment_token": session.token,
                                 "user_id": command.user_id, **facts})


def _same_request(session: PaymentRecord, command: OpenSessionCommand) -> PaymentRecord:
    """A retry must ask for what the attempt was opened with; another amount is a new attempt."""
    if (session.amount, session.currency) != (command.amount, command.currency):
        raise ValidationFailed([f"amount: attempt {session.attempt} of this order is for "
                                f"{format_amount(session.amount)} {session.currency}; open a new attempt"])
    return session
