"""OpenSession: the payment session of one attempt of an order, opened at most once, with no
database connection (and no lock on one) held while a gateway answers.

    1. under a transaction lock on the order's token (it keeps "no other attempt of the order is
       open" true until this attempt's row is in: a check alone cannot see another attempt's row
       going in at the same time). The usual first call (an amount above 0.00, the order not
       expired) is one statement with no transaction around it, repository.open_attempt: the
       lock, then the attempt's row inserted, pending, with this call's lease, only if no other
       attempt of the order is pending and unexpired and the row is not there yet. If it inserts
       nothing, and for every other call: one read of the attempt's row, without a lock or a
       transaction (a retry, a waiter); unless that settles it, one transaction under the lock
       reads the order's attempts: the attempt's row already opened → return it (a retry); there
       without a gateway order → take its lease (below) and go on, unless another call's lease
       still runs: then wait for that call (poll the row, bounded) and answer what it opened; no
       row: the order already expired → 2102; another attempt of the order still pending and
       unexpired → 2102 (one open session per order); an amount of 0.00 → the session is inserted
       captured at gateway `none` with its audit row and `checkout.payment.captured`, and
       answered (no gateway needs to hear of it); otherwise insert the attempt's row, pending,
       with this call's lease. Commit.
    2. with no transaction open and no connection held: create the gateway order with our key
       "<order>:<attempt>" at the preferred gateway; if it is unavailable (breaker open, retries
       used up) or refuses, at the other one
    3. one transaction: store gateway, gateway order id, checkout URL and the expiry (30 minutes
       from now, never past the order's), drop the lease; audit row; event
       checkout.payment.session_opened. A failure in 2 gives the lease back at once.
The lease (`leased_until`) runs as long as this call may (its bound) plus a margin, so it
outlives the call; a call that died leaves a lease that others take over once it has run out. A
call that still finishes after its lease was taken over finds the row opened by the other call
and answers that (our key made the gateway answer the same order; a fallback to the other
gateway at the same time leaves an unpaid orphan order there, never shown to anyone).

payment_svc reads no order: the owner, the amount and the order's expiry come in the request.
A crash anywhere on the way is safe: until step 3 commits, the attempt's row has no gateway
order, so the next call (this process or another) looks the order up by its key at the gateway
before it creates one (tests/integration/payment/test_payment_crash.py). The whole call is
bounded (PAYMENT_OPEN_SESSION_BOUND, 10 s by default, or the caller's gRPC deadline if sooner):
both gateways down, or another call still opening the attempt, → 4001 (retryable) within it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import random
import time
from collections.abc import Callable

from common.clock import rfc3339, utc_now
from common.errors import CheckoutError, ErrorCode, ValidationFailed
from common.faults import fault_point
from common.money import format_amount, to_minor_units
from common.uow import UnitOfWork, UnitOfWorkFactory, one_statement, reading
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
from payment_svc.repository import NO_GATEWAY, NewSession, PaymentRecord, PaymentRepository
from payment_svc.tuning import SessionTuning

_log = logging.getLogger(__name__)
LEASE_MARGIN_S = 2.0  # the lease outlives the call's own bound by this much
POLL_S = (0.02, 0.25)  # waiting for another call's lease: first and longest pause (full jitter)
FREE_SOURCE = "free"  # the `source` of a free session's capture: no gateway said it


@dataclasses.dataclass(frozen=True)
class _Claim:
    """Step 1's outcome: the row; whether this call holds its lease (`until`) and inserted it."""

    row: PaymentRecord
    until: datetime.datetime | None = None  # None: not ours to open (opened already, or another call's lease)
    fresh: bool = False


class SessionOpener:
    def __init__(self, uow: UnitOfWorkFactory, repository: PaymentRepository, gateways: Gateways,
                 tuning: SessionTuning, clock: Callable[[], datetime.datetime] = utc_now,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._uow = uow
        self._repository = repository
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
        lease = datetime.timedelta(seconds=bound + LEASE_MARGIN_S)
        pause = POLL_S[0]
        first = True
        while True:
            claim = await self._claim_attempt(command, lease, first=first)
            first = False
            if claim.row.opened:
                return _same_request(claim.row, command)  # a retry, or the call we waited for opened it
            if claim.until is not None:
                break
            _same_request(claim.row, command)  # another amount is refused now, not after the wait
            if deadline.remaining() <= pause:
                raise CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE, "this payment session is being opened by another call")
            await asyncio.sleep(random.uniform(0, pause))
            pause = min(POLL_S[1], pause * 2)
        try:
            return await self._open_claimed(command, claim.row, deadline, fresh=claim.fresh)
        except BaseException:
            await self._give_back(claim.row, claim.until)
            raise

    async def _claim_attempt(self, command: OpenSessionCommand, lease: datetime.timedelta, *,
                             first: bool) -> _Claim:
        """Step 1: the attempt's row, inserted unless it is there, and this call's lease on it if
        nobody else's runs (a free order's row: inserted captured, nothing to lease). `first`: the
        call's first look (then its attempt's row is usually not there yet)."""
        if first and command.amount != 0 and command.order_expires_at > self._clock():
            async with one_statement(self._uow) as uow:  # the lock and the insert, one statement
                now = self._clock()
                opened = await self._repository.open_attempt(uow.conn, self._new_session(command, now, lease), now)
                await uow.commit()
            if opened is not None:
                return _Claim(opened, opened.leased_until, fresh=True)
        async with reading(self._uow) as uow:  # a retry or a waiter: one read, no lock, no transaction
            seen = await self._repository.by_attempt(uow.conn, command.order_token, command.attempt)
        if seen is not None and (seen.opened or seen.opening_elsewhere(self._clock())):
            return _Claim(seen)
        async with self._uow() as uow:
            await self._repository.lock_order(uow.conn, command.order_token)
            sessions = await self._repository.sessions_of(uow.conn, command.order_token)
            own = next((session for session in sessions if session.attempt == command.attempt), None)
            now = self._clock()
            if own is not None:
                claimed = None if own.opened else await self._repository.claim_opening(uow.conn, own.token, now,
                                                                                       now + lease)
                await uow.commit()  # a commit, also when nothing was written: no ROLLBACK (common/uow.py)
                return _Claim(claimed, claimed.leased_until) if claimed is not None else _Claim(own)
            if command.order_expires_at <= now:
                raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, "the order has expired: it takes no payment")
            blocking = other_open_attempt(command.attempt, [AttemptFacts(session.attempt, session.status,
                                                                         session.expires_at) for session in sessions],
                                          now)
            if blocking is not None:
                raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, f"a payment session of this order is still open "
                                    f"(attempt {blocking}): pay it, or wait until it fails or expires")
            free = command.amount == 0
            inserted = await self._repository.insert_pending(uow.conn, self._new_session(command, now, lease))
            assert inserted is not None, "the attempt's row appeared under the order's lock"
            if free:
                _record_free_capture(uow, inserted, command, now)
            await uow.commit()
            return _Claim(inserted) if free else _Claim(inserted, inserted.leased_until, fresh=True)

    def _new_session(self, command: OpenSessionCommand, now: datetime.datetime,
                     lease: datetime.timedelta) -> NewSession:
        free = command.amount == 0
        return NewSession(
            order_token=command.order_token, attempt=command.attempt, user_id=command.user_id,
            gateway=NO_GATEWAY if free else command.gateway, payment_method=command.payment_method,
            amount=command.amount, currency=command.currency,
            expires_at=session_expiry(now, self._ttl, command.order_expires_at),
            order_expires_at=command.order_expires_at, status="captured" if free else "pending",
            leased_until=None if free else now + lease)

    async def _give_back(self, row: PaymentRecord, until: datetime.datetime | None) -> None:
        """The call failed before it noted a gateway order: its lease ends now, so a retry need
        not wait for it to run out (if this fails too, it runs out by itself)."""
        if until is None:
            return
        try:
            async with self._uow() as uow:
                await self._repository.release_opening(uow.conn, row.token, until)
                await uow.commit()
        except Exception as error:
            _log.warning("could not give back an opening lease; it runs out by itself",
                         extra={"payment_token": row.token, "error": str(error)})

    async def _open_claimed(self, command: OpenSessionCommand, row: PaymentRecord, deadline: Deadline, *,
                            fresh: bool) -> PaymentRecord:
        """`row`: the attempt's row, not opened, as this call took its lease (nobody else opens it
        while the lease runs). `fresh`: this call recorded the attempt, so no gateway create for it
        was ever sent."""
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
            # While the lease runs nobody else notes a gateway order; the row is as read above
            # unless the sweeper expired it meanwhile (then under its row lock, as it is now), or
            # our lease ran out and another call opened it (then that session is the answer).
            locked = row
            opened = await self._repository.mark_opened(
                uow.conn, row.token, gateway=order.gateway, gateway_order_id=order.gateway_order_id,
                checkout_url=order.checkout_url, now=now, expires_at=expires_at, if_status=row.status)
            if opened is None:
                found = await self._repository.by_attempt(uow.conn, command.order_token, command.attempt,
                                                          for_update=True)
                assert found is not None
                if found.opened:
                    await uow.commit()
                    _log.warning("another call opened this attempt after our lease ran out", extra={
                        "order_token": command.order_token, "ours": order.gateway_order_id,
                        "theirs": found.gateway_order_id})
                    return found
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
        # the reply names the gateways and what they did, never an error's own text (it may name an
        # exception class of an SDK); the warnings above have it
        summary = "; ".join(f"{error.gateway}: {'refused' if isinstance(error, GatewayRejected) else 'unavailable'}"
                            for error in failures) or "no time left"
        if failures and all(isinstance(error, GatewayRejected) for error in failures):
            raise CheckoutError(ErrorCode.PAYMENT_FAILED, f"the payment gateways refused to open a session ({summary})",
                                suggested_action="contact support with the correlation id")
        raise CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE, f"no payment gateway is available ({summary})")


def _record_free_capture(uow: UnitOfWork, session: PaymentRecord, command: OpenSessionCommand,
                         now: datetime.datetime) -> None:
    """A session of 0.00 is paid as it opens: the audit row and the capture order_svc pays on."""
    uow.audit(actor=command.user_id, entity_type="payment", entity_id=session.token, action="status:captured",
              before=None, after={"order_token": session.order_token, "attempt": session.attempt,
                                  "gateway": NO_GATEWAY, "amount": format_amount(session.amount),
                                  "currency": session.currency, "source": FREE_SOURCE})
    payment_events.publish_payment_event(uow, payment_events.CAPTURED, session, now, source=FREE_SOURCE)


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
