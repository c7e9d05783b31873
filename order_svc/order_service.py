"""Order use cases: create (idempotent, resumable), read, and a new payment attempt.

Creating an order runs in steps with recovery points (Brandur Leach, "Implementing Stripe-like
Idempotency Keys in Postgres"):
  started ──tx──► order_created ──OpenSession (external, idempotent)──tx──► finished
A crash or a retryable failure at any point leaves the key at its last recovery point; the
client's retry with the same Idempotency-Key resumes there, so there is one order and one
gateway order whatever happens. The whole request uses one connection, which holds the key's
advisory lock (see idempotency_repository).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from checkout.internal.v1 import payment_sessions_pb2
from checkout.v1 import order_pb2
from common.audit import append_audit
from common.clock import utc_now
from common.config import Settings
from common.errors import CheckoutError, ErrorCode
from common.events import fault_point
from common.money import format_amount
from common.outbox import add_event
from common.request_context import Caller, require_user
from order_svc import idempotency_repository as keys
from cart_svc.validation import check_uuid, raise_if_any
from order_svc import order_messages, order_repository, stored_responses
from order_svc.commands import OrderRequest
from order_svc.domain import idempotency
from order_svc.domain.order_status import ATTEMPTABLE, transition
from order_svc.order_repository import OrderRecord
from order_svc.payment_sessions_client import PaymentSessionsClient
from order_svc.place_order import place_order
from order_svc.validation import check_gateway, check_order_request

if TYPE_CHECKING:
    from cart_svc.cart_cache import CartCache

CREATE_ORDER = "POST /api/v1/order"


class OrderService:
    def __init__(self, engine: AsyncEngine, settings: Settings, sessions: PaymentSessionsClient,
                 clock: Callable[[], datetime.datetime] = utc_now, cart_cache: CartCache | None = None) -> None:
        self._engine = engine
        self._cart_cache = cart_cache
        self._settings = settings
        self._sessions = sessions
        self._clock = clock

    async def create_order(self, caller: Caller, request: OrderRequest, raw_request: bytes, key: str) -> order_pb2.Order:
        user = require_user()
        check_order_request(request)
        if not key:
            async with self._engine.connect() as conn:
                order = await self._create(conn, user.user_id, request)
                return await self._open_session(conn, order, request, attempt=1)
        idempotency.check_key(key)
        request_hash = idempotency.fingerprint(CREATE_ORDER, raw_request)
        async with self._engine.connect() as conn:
            locked = await keys.try_lock(conn, user.user_id, key)
            await conn.commit()
            if not locked:
                raise CheckoutError(ErrorCode.IDEMPOTENCY_KEY_IN_FLIGHT)
            try:
                return await self._create_with_key(conn, user.user_id, key, request_hash, request)
            finally:
                await keys.unlock(conn, user.user_id, key)
                await conn.commit()

    async def _create_with_key(self, conn: AsyncConnection, user_id: str, key: str, request_hash: str,
                               request: OrderRequest) -> order_pb2.Order:
        async with conn.begin():
            stored = await keys.find_or_create(conn, user_id, key, CREATE_ORDER, request_hash)
        idempotency.ensure_same_request(stored, request_hash)
        if idempotency.is_finished(stored):
            assert stored.response_code is not None and stored.response_body is not None
            return stored_responses.replay(stored.response_code, stored.response_body)
        try:
            if stored.recovery_point == "started":
                order = await self._create(conn, user_id, request, key=key)
                fault_point("order_after_commit")  # crash tests: the order exists, no gateway call yet
            else:
                assert stored.order_token is not None
                found = await order_repository.get_order(conn, stored.order_token)
                await conn.commit()
                assert found is not None, "a recovery point names an order that does not exist"
                order = found
            response = await self._open_session(conn, order, request, attempt=1)
        except CheckoutError as error:
            if idempotency.should_store(error):
                async with conn.begin():
                    await keys.advance(conn, user_id, key, "finished", response_code=error.code.spec.code,
                                       response_body=stored_responses.error_body(error))
            raise
        async with conn.begin():
            await keys.advance(conn, user_id, key, "finished", response_code=0, response_body=response.SerializeToString(deterministic=True))
        return response

    async def _create(self, conn: AsyncConnection, user_id: str, request: OrderRequest, *, key: str | None = None) -> OrderRecord:
        async with conn.begin():
            placed = await place_order(conn, user_id=user_id, request=request, now=self._clock(),
                                       seller_state=self._settings.seller_state)
            if key is not None:
                await keys.advance(conn, user_id, key, "order_created", order_token=placed.order.order_token)
        if self._cart_cache is not None and placed.cart_version is not None:
            # after commit: a cached copy of the cart must not read "active" any more
            await asyncio.shield(self._cart_cache.carts_closed([(placed.order.cart_token, placed.cart_version)]))
        return placed.order

    async def _open_session(self, conn: AsyncConnection, order: OrderRecord, request: OrderRequest, *, attempt: int) -> order_pb2.Order:
        """Open (or find) the session of `attempt` and move the order to awaiting_payment."""
        session = await self._sessions.open(payment_sessions_pb2.OpenSessionRequest(
            order_token=order.order_token, attempt=attempt, amount=format_amount(order.total), currency=order.currency,
            gateway=request.gateway or "razorpay", payment_method=request.payment_method or (order.payment_method or ""),
            return_url=request.return_url, cancel_url=request.cancel_url, user_id=order.user_id,
            description=f"Internship order {order.order_token}",
        ))
        async with conn.begin():
            current = await order_repository.get_order(conn, order.order_token, for_update=True)
            assert current is not None
            if current.status in ("pending", "payment_failed"):
                current = await self._move(conn, current, "awaiting_payment", payment_token=session.payment_token)
        return order_messages.order_message(current, session)

    async def _move(self, conn: AsyncConnection, order: OrderRecord, target: str, **more: Any) -> OrderRecord:
        """The order in `target` (through the state machine), with its event and audit row."""
        status = transition(order.status, target)
        now = self._clock()
        await order_repository.set_status(conn, order.order_token, status, now, **more)
        await add_event(conn, subject=f"checkout.order.{status}", aggregate_id=order.order_token,
                        payload={"order_token": order.order_token, "status": status, "previous": order.status})
        await append_audit(conn, actor=order.user_id, entity_type="order", entity_id=order.order_token,
                           action=f"status:{status}", before={"status": order.status}, after={"status": status, **more})
        return dataclasses.replace(order, status=status, updated_at=now, **more)

    async def get_order(self, caller: Caller, order_token: str) -> order_pb2.Order:
        user = require_user()
        async with self._engine.connect() as conn:
            order = await self._owned_order(conn, user.user_id, order_token)
            session = await order_repository.latest_session(conn, order_token)
        return order_messages.order_message(order, order_messages.session_message(session) if session else None)

    async def new_attempt(self, caller: Caller, order_token: str, gateway: str) -> order_pb2.PaymentSession:
        """A new payment attempt after the last one failed or expired; never while one is live."""
        user = require_user()
        check_gateway(gateway)
        now = self._clock()
        async with self._engine.connect() as conn:
            async with conn.begin():
                order = await self._owned_order(conn, user.user_id, order_token, for_update=True)
                if order.status not in ATTEMPTABLE or now >= order.expires_at:
                    raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, f"the order is {order.status}: it takes no new payment")
                latest = await order_repository.latest_session(conn, order_token)
                if latest is not None and latest.status == "pending" and now < latest.expires_at:
                    raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, "a payment session of this order is still open",
                                        suggested_action="pay with the open session, or wait until it expires")
                attempt = 1 if latest is None else latest.attempt + 1
            retry = OrderRequest(cart_token=order.cart_token, gateway=gateway, return_url=order.return_url,
                                 cancel_url=order.cancel_url)  # back to the page the first attempt returned to
            response = await self._open_session(conn, order, retry, attempt=attempt)
        return response.payment

    async def _owned_order(self, conn: AsyncConnection, user_id: str, order_token: str, *, for_update: bool = False) -> OrderRecord:
        problems: list[str] = []
        check_uuid(problems, "order_token", order_token)
        raise_if_any(problems)
        order = await order_repository.get_order(conn, order_token, for_update=for_update)
        if order is None:
            raise CheckoutError(ErrorCode.ORDER_NOT_FOUND)
        if order.user_id != user_id:
            raise CheckoutError(ErrorCode.NOT_ALLOWED, "this order belongs to another user")
        return order

