"""Placing an order: a saga run by order_svc (docs/ARCHITECTURE.md "Placing an order").

    1 tx   placement `converting` with a new order token (+ the key: converting, that token)
    2 ──►  cart_svc ConvertCart(cart, order token): re-priced, coupon redeemed, cart converted;
           idempotent on the token. The answer may name another token: this user's order already
           converted the cart (a double submit) — that order is the answer.
    3 tx   the order row `pending` from the snapshot, its placement `placed` (ours `superseded`
           when the answer named another), the key: order_created; checkout.order.created
    4 ──►  payment_svc OpenSession(order, attempt 1): idempotent per (order, attempt)
    5 tx   the order `awaiting_payment` with the session's view, the key: finished + the answer
           (an order of 0.00: payment_svc answers its session captured at gateway `none`; the
           capture is applied at once, as the checkout.payment.captured event that follows will be
           — idempotently — so the answer is the order `paid`)

No connection is held across 2 and 4. A crash between any two steps leaves a recovery point:
the client's retry with the same Idempotency-Key resumes there (domain/placement.resumes_at);
without a key the cart is the anchor (ConvertCart answers the first order). Nobody retrying: the
recovery worker (workers/sweepers.py) abandons the placement and releases the cart; a step 3
that finds its placement abandoned refuses with 4001 and the retry starts afresh.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from common.clock import rfc3339
from common.errors import CheckoutError, ErrorCode
from common.faults import fault_point
from common.money import format_amount, parse_amount
from common.uow import UnitOfWork, UnitOfWorkFactory, one_statement, reading
from order_svc import stored_responses
from order_svc.clients import CartCheckout, PaymentSessions
from order_svc.commands import DEFAULT_GATEWAY, OrderRequest
from order_svc.domain.idempotency import StoredKey
from order_svc.domain.placement import resumes_at, step3_for
from order_svc.moves import move_order_from, record_created
from order_svc.repository import FinishedKey, OrderRecord, OrderRepository
from order_svc.views import OrderView, PaymentView, SessionRequest, Snapshot, order_view

# What pays an order whose session OpenSession answered captured (OrderProgress.captured_at_open:
# the payment.captured consumer's own code path).
ApplyCapture = Callable[[OrderRecord, PaymentView], Awaitable[object]]

CREATE_ORDER = "POST /api/v1/order"


@dataclasses.dataclass(frozen=True)
class HeldKey:
    """An Idempotency-Key this request holds the lease of, as it was when taken."""

    user_id: str
    key: str
    stored: StoredKey


def session_request(order: OrderRecord, attempt: int, gateway: str) -> SessionRequest:
    return SessionRequest(
        order_token=order.order_token, attempt=attempt, user_id=order.user_id, amount=format_amount(order.total),
        currency=order.currency, gateway=gateway or DEFAULT_GATEWAY, payment_method=order.payment_method or "",
        return_url=order.return_url, cancel_url=order.cancel_url,
        description=f"Internship order {order.order_token}", order_expires_at=rfc3339(order.expires_at))


class PlaceOrder:
    def __init__(self, uow: UnitOfWorkFactory, repository: OrderRepository, cart: CartCheckout,
                 payments: PaymentSessions, *, order_ttl: datetime.timedelta,
                 clock: Callable[[], datetime.datetime], apply_capture: ApplyCapture | None = None) -> None:
        """`apply_capture`: pays the order when OpenSession answers a session already captured (a
        free order); without it the order waits for the checkout.payment.captured event."""
        self._uow = uow
        self._apply_capture = apply_capture
        self._repository = repository
        self._cart = cart
        self._payments = payments
        self._order_ttl = order_ttl
        self._clock = clock

    async def run(self, user_id: str, request: OrderRequest, key: HeldKey | None, *,
                  started: str | None = None) -> OrderView:
        """`started`: the order token of a placement step 1 wrote together with the key (the key
        was new: OrderService.create_order), so the saga goes on at step 2."""
        order_token: str | None = None
        placement_token: str | None = started
        if started is not None:
            fault_point("order_after_placement")
        else:
            order_token, placement_token = await self._recovery_point(key)
        if order_token is not None:
            order = await self._read_order(order_token)
        else:
            if placement_token is None:
                placement_token = await self._start(user_id, request, key)
                fault_point("order_after_placement")
            snapshot = await self._convert(placement_token, user_id, request)
            fault_point("order_after_convert")
            order = await self._record_order(placement_token, user_id, request, snapshot, key)
            fault_point("order_after_commit")  # the order row exists; no payment session asked for yet
        return await self._pay(order, user_id, request, key)

    # -- where a retry resumes -----------------------------------------------------------------------
    async def _recovery_point(self, key: HeldKey | None) -> tuple[str | None, str | None]:
        """(an order token whose order exists, or None; else a placement still converting, or None)."""
        if key is None or key.stored.order_token is None:
            return None, None
        token = key.stored.order_token
        if key.stored.recovery_point == "order_created":
            return token, None
        async with self._uow() as uow:
            own = await self._repository.get_placement(uow.conn, token)
            resolved = None
            if own is not None and own.state == "superseded" and own.resolved_order_token:
                resolved = await self._repository.get_placement(uow.conn, own.resolved_order_token)
        if own is None:
            return None, None
        match resumes_at(own.state, resolved.state if resolved else None):
            case "convert":
                return None, token
            case "order":
                return (resolved.order_token if resolved else token), None
            case _:
                return None, None

    # -- step 1 -----------------------------------------------------------------------------------------
    async def _start(self, user_id: str, request: OrderRequest, key: HeldKey | None) -> str:
        order_token = str(uuid.uuid4())
        now = self._clock()
        # Without a key the placement is the one write: one statement, its own transaction.
        async with self._uow() if key is not None else one_statement(self._uow) as uow:
            await self._repository.insert_placement(uow.conn, order_token, request.cart_token, user_id, now)
            if key is not None:
                await self._repository.advance_key(uow.conn, key.user_id, key.key, "converting", now,
                                                   order_token=order_token)
            await uow.commit()
        return order_token

    # -- step 2 -----------------------------------------------------------------------------------------
    async def _convert(self, order_token: str, user_id: str, request: OrderRequest) -> Snapshot:
        try:
            snapshot = await self._cart.convert(cart_token=request.cart_token, order_token=order_token,
                                                user_id=user_id, billing=request.billing)
        except CheckoutError as error:
            if not error.retryable:  # a refusal takes nothing: no cart or coupon to give back
                async with self._uow() as uow:
                    placement = (await self._repository.lock_placements(uow.conn, [order_token])).get(order_token)
                    if placement is not None and placement.state == "converting":
                        await self._repository.set_placement(uow.conn, order_token, "refused", self._clock())
                    await uow.commit()
            raise
        if snapshot.user_id != user_id or snapshot.cart_token != request.cart_token:
            raise CheckoutError(ErrorCode.INTERNAL, "the cart service converted another cart or for another user")
        return snapshot

    # -- step 3 -----------------------------------------------------------------------------------------
    async def _record_order(self, placement_token: str, user_id: str, request: OrderRequest, snapshot: Snapshot,
                            key: HeldKey | None) -> OrderRecord:
        answer = snapshot.order_token or placement_token
        now = self._clock()
        async with self._uow() as uow:
            # The usual case first: our own conversion of a placement still converting, marked
            # placed (its row locked) and its order inserted by one statement.
            # With a key, the key moves to order_created in the same statement.
            order = order_from_snapshot(snapshot, answer, request, now, self._order_ttl)
            inserted = answer == placement_token and await self._repository.place_and_insert_order(
                uow.conn, order, key=None if key is None else (key.user_id, key.key))
            if inserted:
                order = inserted
                record_created(uow, order, actor=user_id)
            else:
                order = await self._record_order_slowly(uow, placement_token, answer, user_id, request, snapshot, now)
                if key is not None:
                    await self._repository.advance_key(uow.conn, key.user_id, key.key, "order_created", now,
                                                       order_token=answer)
            await uow.commit()
        return order

    async def _record_order_slowly(self, uow: UnitOfWork, placement_token: str, answer: str, user_id: str,
                                   request: OrderRequest, snapshot: Snapshot, now: datetime.datetime) -> OrderRecord:
        """Step 3 when the answer is another order's (a double submit) or the placement is not
        converting any more (placed by a retry, or given up): by the locked placements' states."""
        placements = await self._repository.lock_placements(uow.conn, sorted({answer, placement_token}))
        answered = placements.get(answer)
        existing = await self._repository.get_order(uow.conn, answer, for_update=True)
        own = placements.get(placement_token)
        if answer != placement_token and own is not None and own.state == "converting":
            await self._repository.set_placement(uow.conn, placement_token, "superseded", now,
                                                 resolved_order_token=answer)
        step = step3_for(answered.state if answered else None, existing is not None)
        if step == "refuse":
            await uow.commit()
            raise CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE, "this order was abandoned and its cart is being "
                                "given back", suggested_action="retry in a few seconds")
        if existing is None:  # "insert"
            inserted = await self._repository.insert_order(
                uow.conn, order_from_snapshot(snapshot, answer, request, now, self._order_ttl))
            if inserted is not None:
                existing = inserted
                record_created(uow, existing, actor=user_id)
            else:
                existing = await self._existing_order(uow, answer)
        if answered is None:
            await self._repository.insert_placement(uow.conn, answer, snapshot.cart_token, user_id, now,
                                                    state="placed")
        if answered is None or answered.state != "placed":
            await self._repository.set_placement(uow.conn, answer, "placed", now, resolved_order_token=answer)
        return existing

    async def _existing_order(self, uow: UnitOfWork, order_token: str) -> OrderRecord:
        order = await self._repository.get_order(uow.conn, order_token, for_update=True)
        if order is None:
            raise CheckoutError(ErrorCode.INTERNAL, "an order both exists and does not")
        return order

    # -- steps 4 and 5 ------------------------------------------------------------------------------------
    async def _read_order(self, order_token: str) -> OrderRecord:
        async with reading(self._uow) as uow:
            order = await self._repository.get_order(uow.conn, order_token)
        if order is None:
            raise CheckoutError(ErrorCode.INTERNAL, "a recovery point names an order that does not exist")
        return order

    async def _pay(self, order: OrderRecord, user_id: str, request: OrderRequest, key: HeldKey | None) -> OrderView:
        captured = False
        if awaits_first_session(order):
            session = await self._payments.open_session(session_request(order, 1, request.gateway))
            fault_point("order_after_session")
            captured = session.status == "captured" and self._apply_capture is not None
            if captured:  # a free order: paid now, in a transaction of its own (with its invoice)
                assert self._apply_capture is not None
                await self._apply_capture(order, session)
        elif key is None:
            return order_view(order)  # past step 5 already (a double submit): the order as it is
        else:
            session = None  # past step 5 already: the answer to store is the order as it is
        async with self._uow() as uow:
            stored: tuple[int, bytes] | None = None  # the key's answer, if the move's own statement stored it
            if captured:
                order = await self._existing_order(uow, order.order_token)
            elif session is not None:
                order, stored = await self._await_payment(uow, order, session, user_id, key)
            view = order_view(order)
            answer = stored_responses.order_body(view)
            if key is not None and stored != answer:
                await self._repository.advance_key(uow.conn, key.user_id, key.key, "finished", self._clock(),
                                                   response=answer)
            await uow.commit()
        return view

    async def _await_payment(self, uow: UnitOfWork, order: OrderRecord, session: PaymentView, user_id: str,
                             key: HeldKey | None) -> tuple[OrderRecord, tuple[int, bytes] | None]:
        """Step 5's move, pending → awaiting_payment: (the order as it is now; the key's answer if
        the move's statement stored it). That answer is the view of the order as the move leaves
        it, foreseen as move_order foresees it; if the row returned says otherwise, or the order
        had moved on meanwhile (a capture came first), the caller stores the answer itself."""
        now = self._clock()
        changes: dict[str, Any] = {"payment_token": session.payment_token, "payment_attempt": 1,
                                   "payment": session.as_json()}
        finish = None
        if key is not None:
            foreseen = order_view(dataclasses.replace(order, status="awaiting_payment", updated_at=now, **changes))
            finish = FinishedKey(key.user_id, key.key, stored_responses.order_body(foreseen), now)
        moved = await move_order_from(uow, self._repository, order.order_token, "pending", "awaiting_payment",
                                      now=now, actor=user_id, reason="payment session opened",
                                      expected={"payment_attempt": 0}, finish_key=finish, **changes)
        if moved is None:
            return await self._existing_order(uow, order.order_token), None
        return moved, None if finish is None else finish.response


def awaits_first_session(order: OrderRecord) -> bool:
    return order.status == "pending" and order.payment_attempt == 0


def order_from_snapshot(snapshot: Snapshot, order_token: str, request: OrderRequest, now: datetime.datetime,
                        ttl: datetime.timedelta) -> OrderRecord:
    """The order is exactly what cart_svc priced; only the request's own choices come from it."""
    try:
        return OrderRecord(
            order_token=order_token, cart_token=snapshot.cart_token, user_id=snapshot.user_id, status="pending",
            currency=snapshot.currency, items=[dict(line) for line in snapshot.lines],
            subtotal=parse_amount(snapshot.subtotal), discount_code=snapshot.discount_code or None,
            discount_amount=parse_amount(snapshot.discount_amount or "0"),
            taxes=[{"name": tax.name, "rate": tax.rate, "amount": tax.amount} for tax in snapshot.taxes],
            tax_amount=parse_amount(snapshot.tax_amount or "0"), total=parse_amount(snapshot.total),
            exchange_rate=Decimal(snapshot.exchange_rate or "1"),
            billing={**snapshot.billing, **request.invoice_details},
            payment_method=request.payment_method or None, payment_token=None, payment_attempt=0, payment=None,
            enrollment_ids=[], return_url=request.return_url, cancel_url=request.cancel_url,
            expires_at=now + ttl, created_at=now, updated_at=now,
        )
    except (ValueError, InvalidOperation) as error:
        raise CheckoutError(ErrorCode.INTERNAL, f"the cart service answered an unreadable snapshot: {error}") from None
