"""Order use cases: create an order (idempotent, resumable: the saga in place_order.py), read
one, and open a new payment attempt. They return views (views.py), never protobuf.

An Idempotency-Key is held by a lease, not by a lock on a connection: taking the key is one
statement (its own transaction: autocommit) that sets `locked_at` (`claim_key`), every recovery
point renews it, and the answer (or a retryable failure) ends it. A second request with the key
while the lease is live is 2006 (in flight, retryable); a lease left by a process that died runs
out after ORDER_IDEMPOTENCY_LEASE seconds and the retry resumes from the recovery point. No pooled
connection waits on cart_svc or payment_svc, and a lease that runs out under a slow but living
request is still safe: every step is idempotent by the order token, so the worst case is the same
step done twice.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import utc_now
from common.errors import CheckoutError, ErrorCode
from common.request_context import require_user
from common.uow import UnitOfWorkFactory, one_statement, reading
from order_svc import stored_responses
from order_svc.clients import CartCheckout, PaymentSessions
from order_svc.commands import DEFAULT_GATEWAY, OrderRequest
from order_svc.domain import idempotency
from order_svc.domain.order_status import ATTEMPTABLE
from order_svc.domain.return_urls import Origin
from order_svc.moves import move_order
from order_svc.place_order import CREATE_ORDER, ApplyCapture, HeldKey, PlaceOrder, session_request
from order_svc.repository import OrderRecord, OrderRepository
from order_svc.validation import LOCAL_ORIGINS, check_gateway, check_order_request, check_order_token
from order_svc.views import OrderView, PaymentView, order_view

_log = logging.getLogger(__name__)


class OrderService:
    def __init__(self, uow: UnitOfWorkFactory, repository: OrderRepository, cart: CartCheckout,
                 payments: PaymentSessions, *, order_ttl: datetime.timedelta, key_lease: datetime.timedelta,
                 clock: Callable[[], datetime.datetime] = utc_now,
                 return_origins: tuple[Origin, ...] = LOCAL_ORIGINS, apply_capture: ApplyCapture | None = None) -> None:
        """`return_origins`: where return_url / cancel_url may point (RETURN_URL_ORIGINS);
        `apply_capture`: pays a free order at once (place_order.PlaceOrder)."""
        self._uow = uow
        self._return_origins = return_origins
        self._repository = repository
        self._payments = payments
        self._key_lease = key_lease
        self._clock = clock
        self._placing = PlaceOrder(uow, repository, cart, payments, order_ttl=order_ttl, clock=clock,
                                   apply_capture=apply_capture)

    # -- CreateOrder ----------------------------------------------------------------------------------
    async def create_order(self, request: OrderRequest, key: str) -> OrderView:
        user_id = require_user().user_id
        check_order_request(request, self._return_origins)
        if not key:
            return await self._placing.run(user_id, request, None)
        idempotency.check_key(key)
        request_hash = idempotency.fingerprint(CREATE_ORDER, request.canonical())
        stored, started = await self._take_key(user_id, key, request_hash, request)
        if idempotency.is_finished(stored):
            assert stored.response_code is not None and stored.response_body is not None
            return stored_responses.replay(stored.response_code, stored.response_body)
        try:
            return await self._placing.run(user_id, request, HeldKey(user_id, key, stored), started=started)
        except CheckoutError as error:
            await self._settle_key(user_id, key, error)
            raise
        except BaseException:
            await self._release_key_quietly(user_id, key)
            raise

    async def _take_key(self, user_id: str, key: str, request_hash: str,
                        request: OrderRequest) -> tuple[idempotency.StoredKey, str | None]:
        """The key, leased to this request; or its finished answer; or 2005 / 2006. A key used for
        the first time is written with the saga's step 1 in one statement (the placement, and the
        key at `converting` with its order token): then its order token is returned too."""
        now = self._clock()
        order_token = str(uuid.uuid4())
        # One statement writes the key and the placement (or takes the lease) together, so it is
        # atomic as its own transaction. A key it could not take is read afterwards, by a read of
        # its own: whatever changed in between (the other request finished, or let go) is what the
        # answer should go by anyway.
        async with one_statement(self._uow) as uow:
            stored = await self._repository.claim_key(uow.conn, user_id, key, CREATE_ORDER, request_hash, now,
                                                      now - self._key_lease, order_token=order_token,
                                                      cart_token=request.cart_token)
            await uow.commit()
        started = stored is not None and stored.order_token == order_token  # new, and its placement with it
        taken = stored is None
        if taken:
            async with reading(self._uow) as uow:
                stored = await self._repository.get_key(uow.conn, user_id, key)
        if stored is None:  # deleted between the two statements (retention): a race to just retry
            raise CheckoutError(ErrorCode.IDEMPOTENCY_KEY_IN_FLIGHT)
        if taken:
            idempotency.ensure_replayable(stored, request_hash)
        return stored, order_token if started else None

    async def _settle_key(self, user_id: str, key: str, error: CheckoutError) -> None:
        """A final error is the key's answer from now on; a retryable one ends the lease only."""
        async with one_statement(self._uow) as uow:
            if idempotency.should_store(error):
                await self._repository.advance_key(uow.conn, user_id, key, "finished", self._clock(),
                                                   response=stored_responses.error_body(error))
            else:
                await self._repository.release_key(uow.conn, user_id, key)
            await uow.commit()

    async def _release_key_quietly(self, user_id: str, key: str) -> None:
        try:
            async with one_statement(self._uow) as uow:
                await self._repository.release_key(uow.conn, user_id, key)
                await uow.commit()
        except Exception as error:  # the lease runs out by itself
            _log.warning("could not release an idempotency key's lease", extra={"error": repr(error)})

    # -- GetOrder --------------------------------------------------------------------------------------
    async def get_order(self, order_token: str) -> OrderView:
        user_id = require_user().user_id
        check_order_token(order_token)
        async with reading(self._uow) as uow:
            order = await self._owned_order(uow.conn, user_id, order_token)
        return order_view(order)

    # -- CreatePaymentAttempt ----------------------------------------------------------------------------
    async def new_attempt(self, order_token: str, gateway: str) -> PaymentView:
        """A new payment attempt (the last + 1); payment_svc refuses it (2102) while an earlier
        attempt's session is still open."""
        user_id = require_user().user_id
        check_order_token(order_token)
        check_gateway(gateway)
        async with reading(self._uow) as uow:
            order = await self._owned_order(uow.conn, user_id, order_token)
        self._ensure_attemptable(order)
        attempt = order.payment_attempt + 1
        previous_gateway = (order.payment or {}).get("gateway", "")
        session = await self._payments.open_session(session_request(order, attempt, gateway or previous_gateway
                                                                     or DEFAULT_GATEWAY))
        async with self._uow() as uow:
            locked = await self._repository.get_order(uow.conn, order_token, for_update=True)
            assert locked is not None
            if locked.payment_attempt < attempt:
                self._ensure_attemptable(locked)
                changes: dict[str, Any] = {"payment_token": session.payment_token, "payment_attempt": attempt,
                                           "payment": session.as_json()}
                if locked.status == "awaiting_payment":  # the previous session expired unpaid: no status change
                    now = self._clock()
                    await self._repository.update_order(uow.conn, order_token, updated_at=now, **changes)
                    uow.audit(actor=user_id, entity_type="order", entity_id=order_token, action="payment_attempt",
                              before={"payment_token": locked.payment_token, "payment_attempt": locked.payment_attempt},
                              after=changes)
                else:
                    await move_order(uow, self._repository, locked, "awaiting_payment", now=self._clock(),
                                     actor=user_id, reason=f"payment attempt {attempt} opened", **changes)
            await uow.commit()
        return session

    def _ensure_attemptable(self, order: OrderRecord) -> None:
        if order.status not in ATTEMPTABLE or self._clock() >= order.expires_at:
            status = order.status if order.status not in ATTEMPTABLE else "expired"
            raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, f"the order is {status}: it takes no new payment")

    async def _owned_order(self, conn: AsyncConnection, user_id: str, order_token: str) -> OrderRecord:
        return await owned_order(self._repository, conn, user_id, order_token)


async def owned_order(repository: OrderRepository, conn: AsyncConnection, user_id: str,
                      order_token: str) -> OrderRecord:
    """The order, if it is `user_id`'s: else 2101 (none) or 1102 (another user's)."""
    order = await repository.get_order(conn, order_token)
    if order is None:
        raise CheckoutError(ErrorCode.ORDER_NOT_FOUND)
    if order.user_id != user_id:
        raise CheckoutError(ErrorCode.NOT_ALLOWED, "this order belongs to another user")
    return order
