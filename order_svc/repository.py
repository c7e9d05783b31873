"""SQL for schema `ordering`: orders, their placements (the saga log) and idempotency keys.

Every function takes the unit of work's connection; times come from the caller's clock, so that
the service layer decides what "now" is (and its tests can use an in-memory fake of this class).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import SmallInteger, and_, bindparam, delete, exists, func, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from order_svc.domain.idempotency import StoredKey
from order_svc.domain.invoices import order_year
from order_svc.domain.order_status import MAY_BE_PAID
from order_svc.tables import idempotency_keys, order_placements, orders, plumbing
from order_svc.tax_document_repository import InvoiceToIssue, invoice_of


@dataclasses.dataclass(frozen=True)
class OrderRecord:
    order_token: str
    cart_token: str
    user_id: str
    status: str
    currency: str
    items: list[dict[str, Any]]  # checkout.internal.v1.OrderLine as JSON, as ConvertCart returned them
    subtotal: Decimal
    discount_code: str | None
    discount_amount: Decimal
    taxes: list[dict[str, str]]
    tax_amount: Decimal
    total: Decimal
    exchange_rate: Decimal
    billing: dict[str, str]
    payment_method: str | None
    payment_token: str | None
    payment_attempt: int
    payment: dict[str, str] | None  # views.PaymentView as JSON: the latest attempt's session
    enrollment_ids: list[str]
    return_url: str
    cancel_url: str
    expires_at: datetime.datetime
    created_at: datetime.datetime
    updated_at: datetime.datetime
    order_number: int = 0  # given by the database when the order is inserted (0: not yet), within its year
    order_year: int = 0  # the year placed (IST) its number counts in; set when the order is inserted
    refunded_amount: Decimal = Decimal("0.00")  # the sum of its processed refunds


@dataclasses.dataclass(frozen=True)
class PlacementRecord:
    order_token: str
    cart_token: str
    user_id: str
    state: str
    resolved_order_token: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class FinishedKey:
    """An Idempotency-Key to finish with `response` (order_svc/stored_responses.py) at `now`, by
    the statement that changes its order (update_order_if)."""

    user_id: str
    key: str
    response: tuple[int, bytes]
    now: datetime.datetime


_ORDER_FIELDS = tuple(field.name for field in dataclasses.fields(OrderRecord)
                      if field.name not in ("order_number", "order_year"))
# The number is taken in the statement that inserts the order, from its year's sequence (migration
# ordering_0005): only an order that is inserted takes one.
_NEXT_ORDER_NUMBER = func.ordering.next_order_number
_PLACEMENT_COLUMNS = [order_placements.c[field.name] for field in dataclasses.fields(PlacementRecord)]

# The statements of the checkout path, built once (each call only binds its values): a statement
# built per call costs SQLAlchemy a cache-key walk every time. Those whose SET list varies are
# built once per shape (_update_order, _set_placement, _advance_key).
_INSERT_ORDER = (pg_insert(orders).values({**{name: bindparam(name) for name in _ORDER_FIELDS},
                                           "order_year": bindparam("order_year", type_=SmallInteger),
                                           "order_number": _NEXT_ORDER_NUMBER(bindparam("order_year", type_=SmallInteger))})
                 .on_conflict_do_nothing(index_elements=[orders.c.order_token]).returning(orders.c.order_number))
_GET_ORDER = select(orders).where(orders.c.order_token == bindparam("order_token"))
_GET_ORDER_LOCKED = _GET_ORDER.with_for_update()
_INSERT_PLACEMENT = (pg_insert(order_placements)
                     .values({name: bindparam(name) for name in ("order_token", "cart_token", "user_id", "state",
                                                                 "created_at", "updated_at")})
                     .on_conflict_do_nothing(index_elements=[order_placements.c.order_token]))
_GET_PLACEMENT = select(*_PLACEMENT_COLUMNS).where(order_placements.c.order_token == bindparam("order_token"))
_LOCK_PLACEMENTS = (select(*_PLACEMENT_COLUMNS)
                    .where(order_placements.c.order_token.in_(bindparam("tokens", expanding=True)))
                    .order_by(order_placements.c.order_token).with_for_update())


def _place_and_insert_statement(advance_key: bool) -> Any:
    """WITH placed AS (UPDATE placement converting → placed) INSERT INTO orders … SELECT … FROM
    placed ON CONFLICT DO NOTHING RETURNING order_token: the order is inserted only if its own
    placement was converting. With `advance_key`, the Idempotency-Key moves to order_created if
    the order was inserted, in the same statement."""
    # Every parameter is named o_<column> or k_<column>: SQLAlchemy adds to an UPDATE's SET any
    # parameter named like a column of its table, also for an UPDATE inside a CTE.
    placed = (update(order_placements)
              .where(order_placements.c.order_token == bindparam("o_order_token"),
                     order_placements.c.state == literal_column("'converting'"))
              .values(state=literal_column("'placed'"), resolved_order_token=bindparam("o_order_token"),
                      updated_at=bindparam("o_updated_at"))
              .returning(order_placements.c.order_token).cte("placed"))
    year = bindparam("o_order_year", type_=SmallInteger)
    values = select(*(bindparam(f"o_{name}", type_=orders.c[name].type) for name in _ORDER_FIELDS),
                    year, _NEXT_ORDER_NUMBER(year)).select_from(placed)
    inserted = (pg_insert(orders).from_select([*_ORDER_FIELDS, "order_year", "order_number"], values)
                .on_conflict_do_nothing(index_elements=[orders.c.order_token])
                .returning(orders.c.order_token, orders.c.order_number))
    if not advance_key:
        return inserted
    made = inserted.cte("inserted")
    advanced = (update(idempotency_keys)
                .where(idempotency_keys.c.user_id == bindparam("k_user_id"), idempotency_keys.c.key == bindparam("k_key"),
                       select(made.c.order_token).exists())
                .values(recovery_point=literal_column("'order_created'"), order_token=bindparam("o_order_token"),
                        last_used_at=bindparam("o_updated_at"), locked_at=bindparam("o_updated_at"))
                .cte("advanced"))
    return select(made.c.order_token, made.c.order_number).add_cte(advanced)


_PLACE_AND_INSERT_ORDER = _place_and_insert_statement(advance_key=False)
_PLACE_AND_INSERT_ORDER_AND_ADVANCE_KEY = _place_and_insert_statement(advance_key=True)
_KEY = and_(idempotency_keys.c.user_id == bindparam("w_user_id"), idempotency_keys.c.key == bindparam("w_key"))
_GET_KEY = select(idempotency_keys).where(_KEY)
_RELEASE_KEY = update(idempotency_keys).where(_KEY).values(locked_at=None)
_NEW_KEY_COLUMNS = ("user_id", "key", "request_method", "request_hash", "recovery_point", "order_token", "locked_at",
                    "created_at", "last_used_at")


def _claim_key_statement() -> Any:
    """INSERT the key (leased), or take the lease of an existing one that is unfinished, of this
    request and not leased by a live request; RETURNING the row either way it was taken. If the
    key is new (its order token the one offered), the saga's step 1 placement is inserted by the
    same statement. Parameters k_<name> (see _place_and_insert_statement)."""
    statement = pg_insert(idempotency_keys).values({name: bindparam(f"k_{name}") for name in _NEW_KEY_COLUMNS})
    current = idempotency_keys.c
    claimed = statement.on_conflict_do_update(
        index_elements=[current.user_id, current.key],
        set_={"locked_at": statement.excluded.locked_at, "last_used_at": statement.excluded.last_used_at},
        where=and_(current.response_code.is_(None), current.request_hash == statement.excluded.request_hash,
                   or_(current.locked_at.is_(None), current.locked_at < bindparam("k_lease_expired_before"))),
    ).returning(idempotency_keys).cte("claimed")
    placed = (pg_insert(order_placements)
              .from_select(["order_token", "cart_token", "user_id", "state", "created_at", "updated_at"],
                           select(claimed.c.order_token, bindparam("k_cart_token", type_=order_placements.c.cart_token.type),
                                  claimed.c.user_id, literal_column("'converting'"), claimed.c.created_at,
                                  claimed.c.created_at)
                           .where(claimed.c.order_token == bindparam("k_order_token")))
              .on_conflict_do_nothing(index_elements=[order_placements.c.order_token])
              .cte("placed"))
    return select(claimed).add_cte(placed)


_CLAIM_KEY = _claim_key_statement()


@functools.cache
def _update_order(columns: tuple[str, ...], expected: tuple[str, ...] = (), returning: bool = False,
                  payment_patch: bool = False, finish_key: bool = False, invoice: bool = False) -> Any:
    """UPDATE orders SET <columns> [, payment = payment || :payment_patch] WHERE order_token =
    :w_order_token [AND <expected> = :w_<name>…] [AND payment->>'payment_token' = the patch's];
    if the order was updated, by the same statement: with `finish_key`, the Idempotency-Key
    k_user_id/k_key finished; with `invoice`, its tax invoice issued (tax_document_repository.
    invoice_of), its sequence returned as `invoice_sequence`."""
    values: dict[str, Any] = {name: bindparam(name) for name in columns}
    conditions = [orders.c[name] == bindparam(f"w_{name}") for name in expected]
    if payment_patch:  # the view of the same session only (views.PaymentView.updated, in SQL)
        values["payment"] = orders.c.payment.op("||")(bindparam("payment_patch", type_=JSONB))
        conditions.append(orders.c.payment["payment_token"].astext == bindparam("w_patch_payment_token"))
    statement = (update(orders).where(orders.c.order_token == bindparam("w_order_token"), *conditions)
                 .values(values))
    if not returning:
        return statement
    if not (finish_key or invoice):
        return statement.returning(*orders.c)
    moved = statement.returning(*orders.c).cte("moved")
    result = select(moved)
    if invoice:
        result = result.add_columns(select(invoice_of(moved).c.sequence).scalar_subquery().label("invoice_sequence"))
    if finish_key:
        result = result.add_cte(
            update(idempotency_keys)
            .where(idempotency_keys.c.user_id == bindparam("k_user_id"), idempotency_keys.c.key == bindparam("k_key"),
                   select(moved.c.order_token).exists())
            .values(recovery_point=literal_column("'finished'"), response_code=bindparam("k_response_code"),
                    response_body=bindparam("k_response_body"), locked_at=None, last_used_at=bindparam("k_last_used_at"))
            .cte("finished"))
    return result


@functools.cache
def _set_placement(resolved: bool) -> Any:
    names = ("state", "updated_at", "resolved_order_token") if resolved else ("state", "updated_at")
    return (update(order_placements).where(order_placements.c.order_token == bindparam("w_order_token"))
            .values({name: bindparam(name) for name in names}))


@functools.cache
def _advance_key(columns: tuple[str, ...]) -> Any:
    return update(idempotency_keys).where(_KEY).values({name: bindparam(name) for name in columns})


def _order(row: Any) -> OrderRecord:
    """From a row of orders (or a mapping of its columns)."""
    values = dict(row if isinstance(row, Mapping) else row._mapping)
    values["currency"] = values["currency"].strip()
    values["enrollment_ids"] = [str(token) for token in values["enrollment_ids"] or ()]
    return OrderRecord(**values)


def _placement(row: Any) -> PlacementRecord:
    return PlacementRecord(**dict(row._mapping))


def _key(row: Any) -> StoredKey:
    return StoredKey(row.request_hash, row.recovery_point, row.response_code,
                     None if row.response_body is None else bytes(row.response_body),
                     None if row.order_token is None else str(row.order_token))


class OrderRepository:
    # -- orders ---------------------------------------------------------------------------------------
    async def insert_order(self, conn: AsyncConnection, record: OrderRecord) -> OrderRecord | None:
        """The order as inserted (with its number); None (and nothing written) when an order with
        its token exists already."""
        year = order_year(record.created_at)
        row = (await conn.execute(_INSERT_ORDER, {**{name: getattr(record, name) for name in _ORDER_FIELDS},
                                                  "order_year": year})).first()
        return None if row is None else dataclasses.replace(record, order_number=row.order_number, order_year=year)

    async def place_and_insert_order(self, conn: AsyncConnection, record: OrderRecord, *,
                                     key: tuple[str, str] | None = None) -> OrderRecord | None:
        """The order's own placement converting → placed (resolved to itself, its row locked by the
        UPDATE, stamped with the order's updated_at) and the order inserted, in one statement; with
        `key` ((user id, key)), the key moved to order_created (order token, lease renewed) too.
        The order as inserted (with its number); None when the placement was not converting (or the
        order was there already): then the key is left as it was, and maybe one, maybe neither of
        the others was written."""
        year = order_year(record.created_at)
        values = {**{f"o_{name}": getattr(record, name) for name in _ORDER_FIELDS}, "o_order_year": year}
        if key is None:
            row = (await conn.execute(_PLACE_AND_INSERT_ORDER, values)).first()
        else:
            row = (await conn.execute(_PLACE_AND_INSERT_ORDER_AND_ADVANCE_KEY,
                                      {**values, "k_user_id": key[0], "k_key": key[1]})).first()
        return None if row is None else dataclasses.replace(record, order_number=row.order_number, order_year=year)

    async def get_order(self, conn: AsyncConnection, order_token: str, *, for_update: bool = False) -> OrderRecord | None:
        row = (await conn.execute(_GET_ORDER_LOCKED if for_update else _GET_ORDER, {"order_token": order_token})).first()
        return None if row is None else _order(row)

    async def update_order(self, conn: AsyncConnection, order_token: str, **values: Any) -> None:
        """Set columns of one order (move_order sets `status` through here, and nobody else)."""
        await conn.execute(_update_order(tuple(sorted(values))), {"w_order_token": order_token, **values})

    async def update_order_if(self, conn: AsyncConnection, order_token: str, expected: Mapping[str, Any],
                              payment_patch: Mapping[str, str] | None = None, finish_key: FinishedKey | None = None,
                              **values: Any) -> OrderRecord | None:
        """Set columns of one order if its columns hold the `expected` values, in one statement
        (the row lock taken by the UPDATE itself): the order as changed, or None (nothing written).
        `payment_patch`: keys of its `payment` view replaced, if that view is of the same session
        (the same payment_token). `finish_key`: that key finished by the same statement, if the
        order was changed (as advance_key(…, "finished", response=…) would)."""
        row = await self._update_if(conn, order_token, expected, payment_patch, finish_key, None, values)
        return None if row is None else _order(row)

    async def update_order_and_invoice_if(self, conn: AsyncConnection, order_token: str, expected: Mapping[str, Any],
                                          invoice: InvoiceToIssue, payment_patch: Mapping[str, str] | None = None,
                                          **values: Any) -> tuple[OrderRecord, int | None] | None:
        """update_order_if, and the order's tax invoice issued by the same statement if the order
        was changed (the statement that pays it): (the order as changed, the invoice's sequence in
        `invoice.series`, or None when the order had its invoice already), or None (nothing written)."""
        row = await self._update_if(conn, order_token, expected, payment_patch, None, invoice, values)
        if row is None:
            return None
        columns = dict(row._mapping)
        sequence = columns.pop("invoice_sequence")
        return _order(columns), sequence

    async def _update_if(self, conn: AsyncConnection, order_token: str, expected: Mapping[str, Any],
                         payment_patch: Mapping[str, str] | None, finish_key: FinishedKey | None,
                         invoice: InvoiceToIssue | None, values: Mapping[str, Any]) -> Any:
        statement = _update_order(tuple(sorted(values)), tuple(sorted(expected)), returning=True,
                                  payment_patch=payment_patch is not None, finish_key=finish_key is not None,
                                  invoice=invoice is not None)
        parameters = {"w_order_token": order_token, **values,
                      **{f"w_{name}": value for name, value in expected.items()}}
        if payment_patch is not None:
            parameters["payment_patch"] = dict(payment_patch)
            parameters["w_patch_payment_token"] = payment_patch["payment_token"]
        if finish_key is not None:
            parameters.update(k_user_id=finish_key.user_id, k_key=finish_key.key, k_last_used_at=finish_key.now,
                              k_response_code=finish_key.response[0], k_response_body=finish_key.response[1])
        if invoice is not None:
            parameters.update(i_series=invoice.series, i_details=invoice.details)
        return (await conn.execute(statement, parameters)).first()

    async def lock_unpaid_expired(self, conn: AsyncConnection, now: datetime.datetime, limit: int) -> list[OrderRecord]:
        """Unpaid orders past their expiry, locked; rows another sweeper holds are skipped."""
        rows = (await conn.execute(
            select(orders).where(orders.c.status.in_(sorted(MAY_BE_PAID)), orders.c.expires_at <= now)
            .order_by(orders.c.expires_at).limit(limit).with_for_update(skip_locked=True))).all()
        return [_order(row) for row in rows]

    async def payment_flagged_before(self, conn: AsyncConnection, order_token: str, payment_token: str) -> bool:
        audit = plumbing.audit_log
        return bool((await conn.execute(select(exists().where(
            audit.c.entity_type == "order", audit.c.entity_id == order_token, audit.c.action == "payment_flagged",
            audit.c.after["payment_token"].astext == payment_token)))).scalar())

    # -- placements ------------------------------------------------------------------------------------
    async def insert_placement(self, conn: AsyncConnection, order_token: str, cart_token: str, user_id: str,
                               now: datetime.datetime, state: str = "converting") -> None:
        await conn.execute(_INSERT_PLACEMENT, {"order_token": order_token, "cart_token": cart_token, "user_id": user_id,
                                               "state": state, "created_at": now, "updated_at": now})

    async def get_placement(self, conn: AsyncConnection, order_token: str) -> PlacementRecord | None:
        row = (await conn.execute(_GET_PLACEMENT, {"order_token": order_token})).first()
        return None if row is None else _placement(row)

    async def lock_placements(self, conn: AsyncConnection, tokens: Sequence[str]) -> dict[str, PlacementRecord]:
        """The placements of `tokens`, locked in token order (two requests never lock crosswise)."""
        rows = (await conn.execute(_LOCK_PLACEMENTS, {"tokens": list(tokens)})).all()
        return {str(row.order_token): _placement(row) for row in rows}

    async def set_placement(self, conn: AsyncConnection, order_token: str, state: str, now: datetime.datetime, *,
                            resolved_order_token: str | None = None) -> None:
        values: dict[str, Any] = {"w_order_token": order_token, "state": state, "updated_at": now}
        if resolved_order_token is not None:
            values["resolved_order_token"] = resolved_order_token
        await conn.execute(_set_placement(resolved_order_token is not None), values)

    async def abandon_stale(self, conn: AsyncConnection, started_before: datetime.datetime, now: datetime.datetime,
                            limit: int) -> list[PlacementRecord]:
        """Placements still converting that started before `started_before` → abandoned (and
        claimed for release by this caller until someone's claim goes stale)."""
        stale = (select(order_placements.c.order_token)
                 .where(order_placements.c.state == "converting", order_placements.c.created_at < started_before)
                 .order_by(order_placements.c.created_at).limit(limit).with_for_update(skip_locked=True))
        rows = (await conn.execute(update(order_placements).where(order_placements.c.order_token.in_(stale.scalar_subquery()))
                                   .values(state="abandoned", updated_at=now).returning(*_PLACEMENT_COLUMNS))).all()
        return [_placement(row) for row in rows]

    async def claim_abandoned(self, conn: AsyncConnection, claimed_before: datetime.datetime, now: datetime.datetime,
                              limit: int) -> list[PlacementRecord]:
        """Abandoned placements whose release nobody has tried since `claimed_before` (a release
        that failed, or a worker that died): claimed now."""
        stale = (select(order_placements.c.order_token)
                 .where(order_placements.c.state == "abandoned", order_placements.c.updated_at < claimed_before)
                 .order_by(order_placements.c.updated_at).limit(limit).with_for_update(skip_locked=True))
        rows = (await conn.execute(update(order_placements).where(order_placements.c.order_token.in_(stale.scalar_subquery()))
                                   .values(updated_at=now).returning(*_PLACEMENT_COLUMNS))).all()
        return [_placement(row) for row in rows]

    async def mark_released(self, conn: AsyncConnection, order_token: str, now: datetime.datetime) -> bool:
        result = await conn.execute(update(order_placements).where(order_placements.c.order_token == order_token,
                                                                   order_placements.c.state == "abandoned")
                                    .values(state="released", updated_at=now))
        return bool(result.rowcount)

    # -- idempotency keys ---------------------------------------------------------------------------------
    async def claim_key(self, conn: AsyncConnection, user_id: str, key: str, method: str, request_hash: str,
                        now: datetime.datetime, lease_expired_before: datetime.datetime, *,
                        order_token: str | None = None, cart_token: str | None = None) -> StoredKey | None:
        """Take the key's lease (created on first use): its row, or None when this request may not
        run it now (another request's key, a finished answer, or a live lease; `get_key` says which).
        A key created now starts at `converting` with `order_token` and that order's placement of
        `cart_token` (the saga's step 1) when they are given, else at `started`."""
        row = (await conn.execute(_CLAIM_KEY, {
            "k_user_id": user_id, "k_key": key, "k_request_method": method, "k_request_hash": request_hash,
            "k_recovery_point": "started" if order_token is None else "converting", "k_order_token": order_token,
            "k_locked_at": now, "k_created_at": now, "k_last_used_at": now,
            "k_lease_expired_before": lease_expired_before, "k_cart_token": cart_token})).first()
        return None if row is None else _key(row)

    async def get_key(self, conn: AsyncConnection, user_id: str, key: str) -> StoredKey | None:
        row = (await conn.execute(_GET_KEY, {"w_user_id": user_id, "w_key": key})).first()
        return None if row is None else _key(row)

    async def advance_key(self, conn: AsyncConnection, user_id: str, key: str, recovery_point: str,
                          now: datetime.datetime, *, order_token: str | None = None,
                          response: tuple[int, bytes] | None = None) -> None:
        """Move the key to `recovery_point`, renewing its lease; with `response`, finish it and
        release the lease."""
        values: dict[str, Any] = {"recovery_point": recovery_point, "last_used_at": now, "locked_at": now}
        if order_token is not None:
            values["order_token"] = order_token
        if response is not None:
            values.update(response_code=response[0], response_body=response[1], locked_at=None)
        await conn.execute(_advance_key(tuple(sorted(values))), {"w_user_id": user_id, "w_key": key, **values})

    async def release_key(self, conn: AsyncConnection, user_id: str, key: str) -> None:
        """End the lease early: the request stopped (a retryable failure), its retry may resume now."""
        await conn.execute(_RELEASE_KEY, {"w_user_id": user_id, "w_key": key})

    async def delete_finished_keys(self, conn: AsyncConnection, created_before: datetime.datetime) -> int:
        result = await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < created_before,
                                                                   idempotency_keys.c.response_code.is_not(None)))
        return result.rowcount or 0
