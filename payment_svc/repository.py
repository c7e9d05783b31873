"""SQL for the schema `payment`: payment sessions (one row per attempt of an order) and the webhook
inbox, written only by payment_svc. Every method takes the caller's connection (`uow.conn`); the
service layer's tests give it an in-memory stand-in instead (tests/unit/payment/fakes.py).

No lock is held across a gateway call: the one call talking to a gateway about a session holds
a lease on its row (`leased_until`, set and committed before the call), see claim_opening and
claim_check.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Collection
from decimal import Decimal
from typing import Any

from sqlalchemy import String, and_, bindparam, func, literal, literal_column, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common import locks
from common.tracing import current_traceparent
from payment_svc.tables import SCHEMA, Id, payment_sessions, webhook_events

MAX_ERROR = 2000
NO_GATEWAY = "none"  # the gateway of a session of 0.00: nothing to pay, captured at once


@dataclasses.dataclass(frozen=True)
class PaymentRecord:
    """One payment session as stored; the use cases return it as their view."""

    token: str
    order_token: str
    attempt: int
    user_id: str
    gateway: str
    gateway_order_id: str | None
    gateway_payment_id: str | None
    checkout_url: str | None
    payment_method: str | None
    amount: Decimal
    currency: str
    status: str
    expires_at: datetime.datetime
    order_expires_at: datetime.datetime
    created_at: datetime.datetime
    updated_at: datetime.datetime
    leased_until: datetime.datetime | None = None  # the lease of the one call talking to a gateway about it
    next_check_at: datetime.datetime | None = None  # the reconciler's next look-up
    reconcile_checks: int = 0
    trace_context: str | None = None  # the opening request's traceparent: the webhook resumes its trace

    @property
    def opened(self) -> bool:
        """At a gateway, or needing none (a free order's session, captured at once)."""
        return self.gateway_order_id is not None or self.gateway == NO_GATEWAY

    def opening_elsewhere(self, now: datetime.datetime) -> bool:
        """Another call holds the lease to open it at a gateway, and the lease still runs."""
        return not self.opened and self.leased_until is not None and self.leased_until > now


@dataclasses.dataclass(frozen=True)
class NewSession:
    order_token: str
    attempt: int
    user_id: str
    gateway: str
    payment_method: str
    amount: Decimal
    currency: str
    expires_at: datetime.datetime
    order_expires_at: datetime.datetime
    status: str = "pending"
    leased_until: datetime.datetime | None = None  # the inserting call's lease to open it at a gateway


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    status: str  # received | processed | failed | ignored
    error: str | None
    event_id: str = ""


def _record(row: Any) -> PaymentRecord:
    return _record_values(dict(row._mapping))


def _milliseconds(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _record_values(values: dict[str, Any]) -> PaymentRecord:
    values["currency"] = values["currency"].strip()
    for key in ("token", "order_token", "user_id"):
        values[key] = str(values[key])
    return PaymentRecord(**values)


def _order_lock_name(order_token: str) -> str:
    return f"payment-order:{order_token}"


def _pending_values(new: NewSession) -> dict[str, Any]:
    return dict(token=str(uuid.uuid4()), order_token=new.order_token, attempt=new.attempt, user_id=new.user_id,
                gateway=new.gateway, payment_method=new.payment_method or None, amount=new.amount,
                currency=new.currency, status=new.status, expires_at=new.expires_at,
                order_expires_at=new.order_expires_at, leased_until=new.leased_until,
                trace_context=current_traceparent() or None)


# The hottest statements, built once: each call only binds its values.
_BY_ATTEMPT = select(payment_sessions).where(payment_sessions.c.order_token == bindparam("order_token"),
                                             payment_sessions.c.attempt == bindparam("attempt"))
_BY_ATTEMPT_LOCKED = _BY_ATTEMPT.with_for_update()
_BY_GATEWAY_ORDER = select(payment_sessions).where(payment_sessions.c.gateway == bindparam("gateway"),
                                                   payment_sessions.c.gateway_order_id == bindparam("gateway_order_id"))
_BY_GATEWAY_ORDER_LOCKED = _BY_GATEWAY_ORDER.with_for_update()
_ORDER_LOCK = text("SELECT pg_advisory_xact_lock(:h, :l)")


def _update(*columns: str) -> Any:
    """UPDATE payment_sessions SET <columns> WHERE token = :w_token RETURNING *, built once."""
    return (update(payment_sessions).where(payment_sessions.c.token == bindparam("w_token"))
            .values({name: bindparam(name) for name in columns}).returning(*payment_sessions.c))


_MARK_OPENED = _update("gateway", "gateway_order_id", "checkout_url", "updated_at", "expires_at", "leased_until")
_MARK_OPENED_IF = _MARK_OPENED.where(payment_sessions.c.gateway_order_id.is_(None),
                                     payment_sessions.c.status == bindparam("w_status"))
_CLAIM_OPENING = (update(payment_sessions)
                  .where(payment_sessions.c.token == bindparam("w_token"), payment_sessions.c.gateway_order_id.is_(None),
                         or_(payment_sessions.c.leased_until.is_(None),
                             payment_sessions.c.leased_until <= bindparam("w_now")))
                  .values(leased_until=bindparam("leased_until")).returning(*payment_sessions.c))
_RELEASE_OPENING = (update(payment_sessions)
                    .where(payment_sessions.c.token == bindparam("w_token"),
                           payment_sessions.c.leased_until == bindparam("w_until"))
                    .values(leased_until=None))
_CLAIM_CHECK = (update(payment_sessions)
                .where(payment_sessions.c.token == bindparam("w_token"), payment_sessions.c.gateway_order_id.is_not(None),
                       payment_sessions.c.status.in_(("pending", "expired")),
                       or_(payment_sessions.c.leased_until.is_(None),
                           payment_sessions.c.leased_until <= bindparam("w_now")))
                .values(leased_until=bindparam("leased_until")).returning(*payment_sessions.c))
_FINISH_CHECK = (update(payment_sessions).where(payment_sessions.c.token == bindparam("w_token"))
                 .values(next_check_at=bindparam("next_check_at"), reconcile_checks=bindparam("reconcile_checks"),
                         leased_until=bindparam("leased_until")))
_INSERT_PENDING = (insert(payment_sessions)
                   .values({name: bindparam(name) for name in (
                       "token", "order_token", "attempt", "user_id", "gateway", "payment_method", "amount", "currency",
                       "status", "expires_at", "order_expires_at", "leased_until", "trace_context")})
                   .on_conflict_do_nothing(index_elements=[payment_sessions.c.order_token, payment_sessions.c.attempt])
                   .returning(*payment_sessions.c))
# The same row by one call of open_attempt() (migrations/payment/versions/0005_open_attempt.py): the
# order's lock, then the insert, only if no other attempt of the order is open at :now.
_OPEN_ATTEMPT = text(f"""
SELECT * FROM "{SCHEMA}".open_attempt(
    CAST(:lock_high AS integer), CAST(:lock_low AS integer), CAST(:token AS uuid), CAST(:order_token AS uuid),
    CAST(:attempt AS integer), CAST(:user_id AS uuid), CAST(:gateway AS varchar), CAST(:payment_method AS text),
    CAST(:amount AS numeric), CAST(:currency AS char(3)), CAST(:expires_at AS timestamptz),
    CAST(:order_expires_at AS timestamptz), CAST(:leased_until AS timestamptz), CAST(:trace_context AS text),
    CAST(:now AS timestamptz))""")
_BY_TOKEN = select(payment_sessions).where(payment_sessions.c.token == bindparam("token"))
_BY_TOKEN_LOCKED = _BY_TOKEN.with_for_update()
_SESSIONS_OF = (select(payment_sessions).where(payment_sessions.c.order_token == bindparam("order_token"))
                .order_by(payment_sessions.c.attempt))
_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :value, true)")
_LOCK_RECEIVED = (select(webhook_events.c.status, webhook_events.c.error)
                  .where(webhook_events.c.gateway == bindparam("gateway"),
                         webhook_events.c.event_id == bindparam("event_id"))
                  .with_for_update())
_SET_STATUS = _update("status", "updated_at")
_SET_STATUS_AND_PAYMENT = _update("status", "updated_at", "gateway_payment_id")
_SET_STATUS_AND_PAYMENT_IF = _SET_STATUS_AND_PAYMENT.where(
    payment_sessions.c.status == bindparam("w_status"),
    payment_sessions.c.gateway_payment_id.is_not_distinct_from(bindparam("w_gateway_payment_id")))
_EVENT_COLUMNS = ("gateway", "event_id", "event_type", "body", "status", "received_at", "processed_at", "error")
# The event's row, inserted from a row that sets the lock_timeout first, so the timeout bounds the
# insert's own wait for a concurrent delivery of the same event. No conflict target: a row with the
# same event id or the same subject (another delivery of the same event under another id) both make
# the insert a no-op.
_RECEIVED = (insert(webhook_events)
             .from_select([*_EVENT_COLUMNS, "subject"], select(*(
                 bindparam(name, type_=webhook_events.c[name].type) for name in (*_EVENT_COLUMNS, "subject")))
                 .select_from(select(func.set_config("lock_timeout", bindparam("lock_timeout"), True)
                                     .label("lock_timeout")).subquery("timeout")))
             .on_conflict_do_nothing()
             .returning(webhook_events.c.event_id)
             .cte("received"))
# With the session of the gateway order, read without a lock: one row whatever is found (the LEFT
# JOIN from one row; the pair is unique).
_RECEIVE_AND_PROBE = (
    select(select(func.count()).select_from(_RECEIVED).scalar_subquery().label("inserted"), *payment_sessions.c)
    .select_from(select(literal_column("1").label("one")).subquery("one").outerjoin(
        payment_sessions, and_(payment_sessions.c.gateway == bindparam("gateway"),
                               payment_sessions.c.gateway_order_id == bindparam("gateway_order_id")))))
_BY_SUBJECT = (select(webhook_events.c.event_id, webhook_events.c.status)
               .where(webhook_events.c.gateway == bindparam("gateway"), webhook_events.c.subject == bindparam("subject")))

# A capture report of the payment its session is already captured with (Razorpay's order.paid after
# payment.captured, Stripe's second event of a paid Checkout Session) is a duplicate whatever else
# it says (domain/outcome_rules.py): its event row, stored processed, and its audit row, only if so,
# and only if no row has this event id or subject yet. The session is found as apply_payment_outcome
# finds it: by gateway order, else by our token when no session has that gateway order.
_STORE_REPEATED_CAPTURE = text(f"""
WITH captured AS (
    SELECT set_config('lock_timeout', :lock_timeout, true), s.token, s.order_token
    FROM "{SCHEMA}".payment_sessions s
    WHERE s.gateway = :gateway AND s.status = 'captured' AND s.gateway_payment_id = :gateway_payment_id
      AND (s.gateway_order_id = :gateway_order_id
           OR (s.token = :payment_token AND NOT EXISTS (
                  SELECT FROM "{SCHEMA}".payment_sessions o
                  WHERE o.gateway = :gateway AND o.gateway_order_id = :gateway_order_id)))
), stored AS (
    INSERT INTO "{SCHEMA}".webhook_events (gateway, event_id, event_type, body, status, received_at, processed_at,
                                          subject)
    SELECT :gateway, :event_id, :event_type, :body, 'processed', :now, :now, :subject FROM captured
    ON CONFLICT DO NOTHING
    RETURNING event_id
), audit AS (
    INSERT INTO "{SCHEMA}".audit_log (actor, correlation_id, entity_type, entity_id, action, before, after, flagged)
    SELECT :actor, :correlation_id, 'webhook', :gateway || ':' || :event_id, 'webhook:duplicate', 'null',
           :after || jsonb_build_object('payment_token', captured.token, 'order_token', captured.order_token), false
    FROM stored, captured
)
SELECT captured.token, captured.order_token FROM stored, captured""").bindparams(
    bindparam("gateway", type_=String()), bindparam("event_id", type_=String()), bindparam("after", type_=JSONB),
    bindparam("payment_token", type_=Id))


def _store_failed_statement() -> Any:
    statement = insert(webhook_events).values({name: bindparam(name) for name in _EVENT_COLUMNS})
    return statement.on_conflict_do_update(
        index_elements=[webhook_events.c.gateway, webhook_events.c.event_id],
        set_={name: statement.excluded[name] for name in ("status", "processed_at", "error", "body")},
        where=webhook_events.c.status.not_in(("processed", "ignored")))


_STORE_FAILED = _store_failed_statement()


def _finish(*columns: str) -> Any:
    return (update(webhook_events)
            .where(webhook_events.c.gateway == bindparam("w_gateway"),
                   webhook_events.c.event_id == bindparam("w_event_id"))
            .values({name: bindparam(name) for name in columns}))


_FINISH = _finish("status", "processed_at", "error")
_FINISH_WITH_BODY = _finish("status", "processed_at", "error", "body", "subject")


class PaymentRepository:
    # -- payment sessions --------------------------------------------------------------------------
    async def lock_order(self, conn: AsyncConnection, order_token: str) -> None:
        """Serialise the openers of one order's attempts until the transaction ends, so that "no
        earlier attempt is open" stays true until the new attempt's row is in."""
        high, low = locks.lock_ids(_order_lock_name(order_token))
        await conn.execute(_ORDER_LOCK, {"h": high, "l": low})

    async def insert_pending(self, conn: AsyncConnection, new: NewSession) -> PaymentRecord | None:
        """The attempt's row, not yet at any gateway (pending, with the inserting call's lease; or a
        free session, captured); None if it was already there."""
        inserted = (await conn.execute(_INSERT_PENDING, _pending_values(new))).first()
        return None if inserted is None else _record(inserted)

    async def open_attempt(self, conn: AsyncConnection, new: NewSession,
                           now: datetime.datetime) -> PaymentRecord | None:
        """`insert_pending` of a pending row under the order's lock (as lock_order), if no other
        attempt of the order is open at `now` (pending and not past its expiry), as one statement:
        on an autocommit connection the lock is held until the row is committed. None, nothing
        written, if another attempt is open or the attempt's row is there."""
        high, low = locks.lock_ids(_order_lock_name(new.order_token))
        inserted = (await conn.execute(_OPEN_ATTEMPT, {**_pending_values(new), "lock_high": high, "lock_low": low,
                                                       "now": now})).first()
        return None if inserted is None else _record(inserted)

    async def by_attempt(self, conn: AsyncConnection, order_token: str, attempt: int, *,
                         for_update: bool = False) -> PaymentRecord | None:
        query = _BY_ATTEMPT_LOCKED if for_update else _BY_ATTEMPT
        row = (await conn.execute(query, {"order_token": order_token, "attempt": attempt})).first()
        return None if row is None else _record(row)

    async def by_token(self, conn: AsyncConnection, token: str, *, for_update: bool = False) -> PaymentRecord | None:
        row = (await conn.execute(_BY_TOKEN_LOCKED if for_update else _BY_TOKEN, {"token": token})).first()
        return None if row is None else _record(row)

    async def by_gateway_order(self, conn: AsyncConnection, gateway: str, gateway_order_id: str, *,
                               for_update: bool = False) -> PaymentRecord | None:
        query = _BY_GATEWAY_ORDER_LOCKED if for_update else _BY_GATEWAY_ORDER
        row = (await conn.execute(query, {"gateway": gateway, "gateway_order_id": gateway_order_id})).first()
        return None if row is None else _record(row)

    async def sessions_of(self, conn: AsyncConnection, order_token: str) -> list[PaymentRecord]:
        """Every attempt's session of the order, by attempt."""
        return [_record(row) for row in (await conn.execute(_SESSIONS_OF, {"order_token": order_token})).all()]

    async def mark_opened(self, conn: AsyncConnection, token: str, *, gateway: str, gateway_order_id: str,
                          checkout_url: str, now: datetime.datetime, expires_at: datetime.datetime,
                          if_status: str | None = None) -> PaymentRecord | None:
        """Note the gateway order of the session. With `if_status`: only if the session has no
        gateway order and is in that status (one statement, its row locked by the UPDATE itself),
        else None and nothing written."""
        values = {"w_token": token, "gateway": gateway, "gateway_order_id": gateway_order_id,
                  "checkout_url": checkout_url, "updated_at": now, "expires_at": expires_at, "leased_until": None}
        if if_status is None:
            return _record((await conn.execute(_MARK_OPENED, values)).one())
        row = (await conn.execute(_MARK_OPENED_IF, {**values, "w_status": if_status})).first()
        return None if row is None else _record(row)

    async def claim_opening(self, conn: AsyncConnection, token: str, now: datetime.datetime,
                            until: datetime.datetime) -> PaymentRecord | None:
        """Take the lease to open the session at a gateway, if it is not opened and nobody holds a
        lease that still runs (one statement: its row locked by the UPDATE); None if not taken."""
        row = (await conn.execute(_CLAIM_OPENING, {"w_token": token, "w_now": now, "leased_until": until})).first()
        return None if row is None else _record(row)

    async def release_opening(self, conn: AsyncConnection, token: str, until: datetime.datetime) -> None:
        """Give the lease back (the call failed): if it is still the one taken (`until`)."""
        await conn.execute(_RELEASE_OPENING, {"w_token": token, "w_until": until})

    async def set_status(self, conn: AsyncConnection, token: str, status: str, now: datetime.datetime, *,
                         gateway_payment_id: str | None = None) -> PaymentRecord:
        values: dict[str, Any] = {"w_token": token, "status": status, "updated_at": now}
        if gateway_payment_id is None:
            row = (await conn.execute(_SET_STATUS, values)).one()
        else:
            row = (await conn.execute(_SET_STATUS_AND_PAYMENT, {**values, "gateway_payment_id": gateway_payment_id})).one()
        return _record(row)

    async def set_status_if(self, conn: AsyncConnection, seen: PaymentRecord, status: str, now: datetime.datetime, *,
                            gateway_payment_id: str) -> PaymentRecord | None:
        """`set_status` if the session's status and payment id are still as `seen` (one statement,
        its row locked by the UPDATE itself); None and nothing written if not."""
        row = (await conn.execute(_SET_STATUS_AND_PAYMENT_IF, {
            "w_token": seen.token, "status": status, "updated_at": now, "gateway_payment_id": gateway_payment_id,
            "w_status": seen.status, "w_gateway_payment_id": seen.gateway_payment_id})).first()
        return None if row is None else _record(row)

    async def lock_overdue_pending(self, conn: AsyncConnection, now: datetime.datetime, limit: int) -> list[PaymentRecord]:
        """Pending sessions past their expiry, locked; rows another transaction holds are skipped."""
        rows = (await conn.execute(
            select(payment_sessions)
            .where(payment_sessions.c.status == "pending", payment_sessions.c.expires_at <= now)
            .order_by(payment_sessions.c.expires_at).limit(limit)
            .with_for_update(skip_locked=True)
        )).all()
        return [_record(row) for row in rows]

    async def due_for_reconcile(self, conn: AsyncConnection, *, now: datetime.datetime,
                                pending_before: datetime.datetime, expired_after: datetime.datetime,
                                gateways: Collection[str], cursor: tuple[datetime.datetime, str] | None, limit: int,
                                only: Collection[str] | None = None) -> list[tuple[datetime.datetime, str, str]]:
        """(created_at, token, gateway) of sessions opened at one of `gateways` that are pending
        since before `pending_before` or expired after `expired_after`, whose next check is due
        (`next_check_at`, unless `only` names them), in keyset order after `cursor`."""
        table = payment_sessions
        query = (select(table.c.created_at, table.c.token, table.c.gateway)
                 .where(table.c.gateway_order_id.is_not(None), table.c.gateway.in_(list(gateways)),
                        or_(and_(table.c.status == "pending", table.c.created_at <= pending_before),
                            and_(table.c.status == "expired", table.c.expires_at > expired_after)))
                 .order_by(table.c.created_at, table.c.token).limit(limit))
        if cursor is not None:
            after = tuple_(literal(cursor[0], table.c.created_at.type), literal(cursor[1], table.c.token.type))
            query = query.where(tuple_(table.c.created_at, table.c.token) > after)
        if only is not None:
            query = query.where(table.c.token.in_(list(only)))
        else:
            query = query.where(or_(table.c.next_check_at.is_(None), table.c.next_check_at <= now))
        return [(row.created_at, str(row.token), row.gateway) for row in (await conn.execute(query)).all()]

    async def claim_check(self, conn: AsyncConnection, token: str, now: datetime.datetime,
                          until: datetime.datetime) -> PaymentRecord | None:
        """The session, leased to this reconciler until `until`, if it is still one to look up
        (opened, pending or expired) and no other call's lease runs; None if not (one statement)."""
        row = (await conn.execute(_CLAIM_CHECK, {"w_token": token, "w_now": now, "leased_until": until})).first()
        return None if row is None else _record(row)

    async def finish_check(self, conn: AsyncConnection, token: str, *, next_check_at: datetime.datetime,
                           checks: int) -> None:
        """The look-up is over: the lease ends, the next one is scheduled."""
        await conn.execute(_FINISH_CHECK, {"w_token": token, "next_check_at": next_check_at,
                                           "reconcile_checks": checks, "leased_until": None})

    # -- the webhook inbox -------------------------------------------------------------------------
    async def set_lock_timeout(self, conn: AsyncConnection, seconds: float) -> None:
        """For the rest of this transaction, a row lock waited for longer than `seconds` fails."""
        await conn.execute(_LOCK_TIMEOUT, {"value": _milliseconds(seconds)})

    async def receive(self, conn: AsyncConnection, *, gateway: str, event_id: str, event_type: str, body: bytes,
                      now: datetime.datetime, status: str, error: str | None, subject: str | None,
                      gateway_order_id: str | None, lock_timeout_s: float) -> tuple[bool, PaymentRecord | None]:
        """In one statement: `set_lock_timeout`; the event inserted in `status` (the outcome its
        transaction commits it with, processed at `now`) unless a row for (gateway, event id), or
        an event with the same `subject` (see event_of_subject), is there; the session of the
        gateway order, if any, read without a lock. (inserted?, that session).

        A concurrent transaction inserting the same event makes this wait for its outcome (the
        primary key, or the unique subject), so two deliveries of one event are never processed at
        the same time."""
        row = (await conn.execute(_RECEIVE_AND_PROBE, {
            "lock_timeout": _milliseconds(lock_timeout_s), "subject": subject, "gateway": gateway, "event_id": event_id,
            "event_type": event_type, "body": body, "status": status, "received_at": now, "processed_at": now,
            "error": None if error is None else error[:MAX_ERROR], "gateway_order_id": gateway_order_id})).one()
        values = dict(row._mapping)
        inserted = values.pop("inserted") == 1
        return inserted, None if values["token"] is None else _record_values(values)

    async def store_failed(self, conn: AsyncConnection, *, gateway: str, event_id: str, event_type: str, body: bytes,
                           received_at: datetime.datetime, now: datetime.datetime, error: str) -> None:
        """The event as `failed` with the error (its processing was rolled back): inserted, or an
        earlier row updated unless another delivery processed it meanwhile."""
        await conn.execute(_STORE_FAILED, {
            "gateway": gateway, "event_id": event_id, "event_type": event_type, "body": body, "status": "failed",
            "received_at": received_at, "processed_at": now, "error": error[:MAX_ERROR]})

    async def lock_received(self, conn: AsyncConnection, gateway: str, event_id: str) -> StoredEvent | None:
        row = (await conn.execute(_LOCK_RECEIVED, {"gateway": gateway, "event_id": event_id})).first()
        return None if row is None else StoredEvent(row.status, row.error)

    async def finish_received(self, conn: AsyncConnection, *, gateway: str, event_id: str, status: str,
                              now: datetime.datetime, error: str | None = None, body: bytes | None = None,
                              subject: str | None = None) -> None:
        values: dict[str, object] = {"w_gateway": gateway, "w_event_id": event_id, "status": status,
                                     "processed_at": now, "error": None if error is None else error[:MAX_ERROR]}
        if body is None:
            await conn.execute(_FINISH, values)
        else:
            await conn.execute(_FINISH_WITH_BODY, {**values, "body": body, "subject": subject})

    async def store_repeated_capture(self, conn: AsyncConnection, *, gateway: str, event_id: str, event_type: str,
                                     body: bytes, now: datetime.datetime, subject: str | None, gateway_order_id: str,
                                     gateway_payment_id: str, payment_token: str, lock_timeout_s: float,
                                     actor: str, correlation_id: str,
                                     audit_after: dict[str, Any]) -> tuple[str, str] | None:
        """If the reported capture is the one its session is captured with, and the event is not
        stored yet: the event stored `processed` with its `webhook:duplicate` audit row (`audit_after`
        plus the session's payment and order tokens), as one statement; the (payment, order) tokens.
        None, and nothing written, otherwise."""
        row = (await conn.execute(_STORE_REPEATED_CAPTURE, {
            "lock_timeout": _milliseconds(lock_timeout_s), "gateway": gateway, "event_id": event_id,
            "event_type": event_type, "body": body, "now": now, "subject": subject,
            "gateway_order_id": gateway_order_id, "gateway_payment_id": gateway_payment_id,
            "payment_token": payment_token or None, "actor": actor, "correlation_id": correlation_id,
            "after": audit_after})).first()
        return None if row is None else (str(row.token), str(row.order_token))

    async def event_of_subject(self, conn: AsyncConnection, gateway: str, subject: str) -> StoredEvent | None:
        """The stored event with this subject (one applied before, under whatever id), if any."""
        row = (await conn.execute(_BY_SUBJECT, {"gateway": gateway, "subject": subject})).first()
        return None if row is None else StoredEvent(row.status, None, row.event_id)
