"""SQL for schema `cart`: carts, the catalog, coupons and sales, the redemption ledger, conversions and
the admin's writes. Every method takes the unit of work's connection; none commits.

A cart is one aggregate (its lines as JSONB), read and written whole and row-locked for change.
Service-layer tests replace this class with an in-memory one (tests/unit/cart/memory.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, column, func, insert, literal_column, or_, select, text, true, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc.domain.cart import Cart, CartLine, PlanRef
from cart_svc.domain.catalog import InternshipEntry
from cart_svc.domain.conversion import ConvertedCart, from_json, to_json
from cart_svc.domain.coupons import Coupon
from cart_svc.domain.currency import ExchangeRate
from cart_svc.domain.sales import Sale
from cart_svc.tables import (
    Id,
    cart_conversions,
    carts,
    coupon_redemptions,
    coupons,
    exchange_rate_changes,
    exchange_rates,
    internships,
    plans,
    sales,
)
from common.money import format_amount


@dataclasses.dataclass(frozen=True)
class CartTotals:
    """The cart's priced figures as stored beside it (recomputed on every write)."""

    subtotal: Decimal
    discount_amount: Decimal
    tax_rate: Decimal
    tax_amount: Decimal
    total: Decimal


@dataclasses.dataclass(frozen=True)
class Redemption:
    code: str
    user_id: str
    status: str  # held | released


@dataclasses.dataclass(frozen=True)
class Released:
    code: str
    user_id: str
    redeemed_count: int  # the coupon's count after the release


@dataclasses.dataclass(frozen=True)
class Conversion:
    order_token: str
    cart_token: str
    user_id: str
    status: str  # converted | released
    snapshot: ConvertedCart


class HoldRefused(Exception):
    """The redemption could not be held: `reason` is "order_taken" or "limit_reached"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Built once: each call only binds its values.
_GET_CART = select(carts).where(carts.c.token == bindparam("token"))
_GET_CART_LOCKED = _GET_CART.with_for_update()
_WRITTEN = ("user_id", "status", "items", "currency", "sale_slug", "discount_code", "subtotal", "discount_amount",
            "tax_rate", "tax_amount", "total", "expires_at", "device_id", "analytics_data", "order_token", "version",
            "updated_at")
_INSERT_CART = insert(carts).values({name: bindparam(name) for name in ("token", "created_at", *_WRITTEN)})
_SAVE_CART = update(carts).where(carts.c.token == bindparam("w_token")).values({name: bindparam(name) for name in _WRITTEN})

# ANY(ARRAY(…)) rather than IN (…): the locking, LIMITed subquery then runs exactly once (an
# InitPlan); under IN the planner may re-run it and lock or update more rows than the LIMIT.
# SKIP LOCKED: sweepers never wait for each other nor for a cart being changed right now (it is
# left for the next pass). The version bump makes cached entries of the old version unreachable.
_EXPIRE_DUE = text("""
UPDATE cart.carts SET status = 'expired', updated_at = now(), version = version + 1
WHERE token = ANY(ARRAY(
    SELECT token FROM cart.carts
    WHERE status IN ('draft', 'active') AND expires_at <= now()
    ORDER BY expires_at
    LIMIT :n
    FOR UPDATE SKIP LOCKED))
RETURNING token::text, version
""")
# Abandoned: active, unchanged since :idle_before, never reported. Sets only abandoned_at (no
# version bump: nothing a client sees changes), so the cart stays exactly as it was.
_MARK_ABANDONED = text("""
UPDATE cart.carts SET abandoned_at = now()
WHERE token = ANY(ARRAY(
    SELECT token FROM cart.carts
    WHERE status = 'active' AND abandoned_at IS NULL AND updated_at <= :idle_before
    ORDER BY updated_at
    LIMIT :n
    FOR UPDATE SKIP LOCKED))
RETURNING *
""").columns(token=Id, user_id=Id, order_token=Id)

_PLAN_COLUMNS = (plans.c.plan_id, plans.c.internship_id, internships.c.title, plans.c.period_value,
                 plans.c.period_unit, plans.c.price)
_PLANS = select(*_PLAN_COLUMNS).join(internships, internships.c.internship_id == plans.c.internship_id)
_PLANS_BY_ID = _PLANS.where(plans.c.plan_id.in_(bindparam("plan_ids", expanding=True)))
_PLAN_FOR_PERIOD = _PLANS.where(plans.c.internship_id == bindparam("internship_id"),
                                plans.c.period_value == bindparam("period_value"),
                                plans.c.period_unit == bindparam("period_unit"))
_EXCHANGE_RATE = select(exchange_rates.c.rate).where(exchange_rates.c.currency == bindparam("currency"))
_GET_COUPON = select(coupons).where(coupons.c.code == bindparam("code"))
_LOCK_COUPON = _GET_COUPON.with_for_update()
_USER_REDEMPTIONS = (select(func.count()).select_from(coupon_redemptions)
                     .where(coupon_redemptions.c.code == bindparam("code"),
                            coupon_redemptions.c.user_id == bindparam("user_id"),
                            coupon_redemptions.c.status == "held"))
_GET_SALE = select(sales).where(sales.c.sale_slug == bindparam("slug"))
_REDEMPTION_OF = (select(coupon_redemptions.c.code, coupon_redemptions.c.user_id, coupon_redemptions.c.status)
                  .where(coupon_redemptions.c.order_token == bindparam("order_token")))
_HOLD_REDEMPTION = (upsert(coupon_redemptions)
                    .values({**{name: bindparam(name) for name in ("redemption_id", "code", "user_id", "order_token")},
                             "status": "held"})
                    .on_conflict_do_nothing(index_elements=[coupon_redemptions.c.order_token])
                    .returning(coupon_redemptions.c.redemption_id))
_COUNT_REDEMPTION = (update(coupons)
                     .where(coupons.c.code == bindparam("w_code"),
                            or_(coupons.c.max_redemptions == 0, coupons.c.redeemed_count < coupons.c.max_redemptions))
                     .values(redeemed_count=coupons.c.redeemed_count + 1)
                     .returning(coupons.c.redeemed_count))
_RELEASE_REDEMPTION = (update(coupon_redemptions)
                       .where(coupon_redemptions.c.order_token == bindparam("w_order_token"),
                              coupon_redemptions.c.status == "held")
                       .values(status="released", released_at=func.now())
                       .returning(coupon_redemptions.c.code, coupon_redemptions.c.user_id))
_UNCOUNT_REDEMPTION = (update(coupons).where(coupons.c.code == bindparam("w_code"))
                       .values(redeemed_count=coupons.c.redeemed_count - 1).returning(coupons.c.redeemed_count))
_CONVERSION = select(cart_conversions).where(cart_conversions.c.order_token == bindparam("order_token"))
_CONVERSION_LOCKED = _CONVERSION.with_for_update()
_CONVERTED_OF_CART = select(cart_conversions).where(cart_conversions.c.cart_token == bindparam("cart_token"),
                                                    cart_conversions.c.status == "converted")

def _save_and_convert_statement() -> Any:
    """WITH saved AS (UPDATE the cart) INSERT INTO cart_conversions … SELECT … FROM saved ON CONFLICT
    (order_token) DO NOTHING RETURNING order_token. The conversion's parameters are named c_<column>:
    SQLAlchemy adds to an UPDATE's SET any parameter named like a column of its table (the cart has
    a created_at too), also for an UPDATE inside a CTE."""
    saved = _SAVE_CART.returning(carts.c.token).cte("saved")
    names = ("order_token", "cart_token", "user_id", "snapshot", "created_at")
    values = select(*(bindparam(f"c_{name}", type_=cart_conversions.c[name].type) for name in names),
                    literal_column("'converted'")).select_from(saved)
    return (upsert(cart_conversions).from_select([*names, "status"], values)
            .on_conflict_do_nothing(index_elements=[cart_conversions.c.order_token])
            .returning(cart_conversions.c.order_token))


_SAVE_AND_CONVERT = _save_and_convert_statement()


def _lock_cart_for_conversion_statement() -> Any:
    """WITH locked AS (SELECT the cart FOR UPDATE) SELECT locked.*, the order's conversion (c_*) and
    the plans of the cart's lines (p_*) FROM locked LEFT JOIN …: one row per plan found (or one
    with no plan), each with the cart's and the conversion's columns (or NULLs); no row, no cart.
    The lock is taken in the CTE, so the cart is the row as it is once locked; the conversion and
    the plans are read in the statement's snapshot, which is older if the lock was waited for."""
    locked = _GET_CART_LOCKED.cte("locked")
    # c["items"]: `.c.items` is the column collection's items() method
    line = func.jsonb_array_elements(locked.c["items"]).table_valued(column("value", JSONB)).render_derived(name="line")
    cart_plans = (select(*_PLAN_COLUMNS)  # each line's plan by its key (LATERAL: not every plan against every line)
                  .select_from(line.join(plans, plans.c.plan_id == line.c.value["plan_id"].astext.cast(Id))
                               .join(internships, internships.c.internship_id == plans.c.internship_id))
                  .lateral("cart_plans"))
    return (select(locked, *(field.label(f"c_{field.name}") for field in cart_conversions.c),
                   *(field.label(f"p_{field.name}") for field in cart_plans.c))
            .select_from(locked.outerjoin(cart_conversions, cart_conversions.c.order_token == bindparam("order_token"))
                         .outerjoin(cart_plans, true())))


_LOCK_CART_FOR_CONVERSION = _lock_cart_for_conversion_statement()
_RELEASE_CONVERSION = (update(cart_conversions)
                       .where(cart_conversions.c.order_token == bindparam("w_order_token"),
                              cart_conversions.c.status == "converted")
                       .values(status="released", released_at=func.now())
                       .returning(cart_conversions.c.order_token))


class Repository:
    # -- carts ---------------------------------------------------------------------------------------
    async def get_cart(self, conn: AsyncConnection, token: str, *, for_update: bool = False) -> Cart | None:
        row = (await conn.execute(_GET_CART_LOCKED if for_update else _GET_CART, {"token": token})).mappings().first()
        return None if row is None else cart_from_row(row)

    async def open_cart_of_user(self, conn: AsyncConnection, user_id: str, *, exclude: str) -> Cart | None:
        """The user's most recently changed open cart other than `exclude`, locked."""
        query = (select(carts)
                 .where(carts.c.user_id == user_id, carts.c.status.in_(("draft", "active")), carts.c.token != exclude)
                 .order_by(carts.c.updated_at.desc()).limit(1).with_for_update())
        row = (await conn.execute(query)).mappings().first()
        return None if row is None else cart_from_row(row)

    async def insert_cart(self, conn: AsyncConnection, cart: Cart, totals: CartTotals) -> None:
        await conn.execute(_INSERT_CART, {"token": cart.token, "created_at": cart.created_at, **_values(cart, totals)})

    async def save_cart(self, conn: AsyncConnection, cart: Cart, totals: CartTotals) -> None:
        cart.version += 1
        await conn.execute(_SAVE_CART, {"w_token": cart.token, **_values(cart, totals)})

    async def expire_due(self, conn: AsyncConnection, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` open carts past their expiry, now expired: (token, new version) of each."""
        return [(token, int(version)) for token, version in (await conn.execute(_EXPIRE_DUE, {"n": limit})).all()]

    async def mark_abandoned(self, conn: AsyncConnection, idle_before: datetime.datetime,
                             limit: int) -> list[tuple[Cart, Decimal]]:
        """Up to `limit` active carts unchanged since `idle_before` and never reported, now marked:
        each with its stored total."""
        rows = (await conn.execute(_MARK_ABANDONED, {"idle_before": idle_before, "n": limit})).mappings().all()
        return [(cart_from_row(row), row["total"]) for row in rows]

    # -- the catalog -------------------------------------------------------------------------------------
    async def list_internships(self, conn: AsyncConnection) -> list[InternshipEntry]:
        rows = (await conn.execute(
            _PLANS.add_columns(internships.c.description)
            .order_by(internships.c.title, internships.c.internship_id, plans.c.period_unit, plans.c.period_value)
        )).all()
        grouped: dict[str, InternshipEntry] = {}
        for row in rows:
            entry = grouped.get(row.internship_id)
            plan = _plan(row)
            if entry is None:
                grouped[row.internship_id] = InternshipEntry(row.internship_id, row.title, row.description, (plan,))
            else:
                grouped[row.internship_id] = dataclasses.replace(entry, plans=(*entry.plans, plan))
        return list(grouped.values())

    async def plans_by_id(self, conn: AsyncConnection, plan_ids: Iterable[str]) -> dict[str, PlanRef]:
        ids = sorted(set(plan_ids))
        if not ids:
            return {}
        rows = (await conn.execute(_PLANS_BY_ID, {"plan_ids": ids})).all()
        return {row.plan_id: _plan(row) for row in rows}

    async def all_plans(self, conn: AsyncConnection) -> dict[str, PlanRef]:
        return {row.plan_id: _plan(row) for row in (await conn.execute(_PLANS)).all()}

    async def plan_for_period(self, conn: AsyncConnection, internship_id: str, value: int, unit: str) -> PlanRef | None:
        row = (await conn.execute(_PLAN_FOR_PERIOD, {"internship_id": internship_id, "period_value": value,
                                                     "period_unit": unit})).first()
        return None if row is None else _plan(row)

    async def exchange_rate(self, conn: AsyncConnection, currency: str) -> Decimal | None:
        if currency == "INR":
            return Decimal(1)
        return (await conn.execute(_EXCHANGE_RATE, {"currency": currency})).scalar()

    # -- coupons and sales ------------------------------------------------------------------------------
    async def get_coupon(self, conn: AsyncConnection, code: str) -> Coupon | None:
        row = (await conn.execute(_GET_COUPON, {"code": code.upper()})).first()
        return None if row is None else coupon_from_row(row)

    async def listed_coupons(self, conn: AsyncConnection, also: str | None = None) -> list[Coupon]:
        """The coupons offered to every cart, and `also` (the cart's own code) whether listed or not."""
        wanted = coupons.c.listed if also is None else (coupons.c.listed | (coupons.c.code == also.upper()))
        result = await conn.execute(select(coupons).where(wanted).order_by(coupons.c.code))
        return [coupon_from_row(row) for row in result.all()]

    async def user_redemptions(self, conn: AsyncConnection, code: str, user_id: str | None) -> int:
        """How many redemptions of `code` the user holds now."""
        if not user_id:
            return 0
        return (await conn.execute(_USER_REDEMPTIONS, {"code": code.upper(), "user_id": user_id})).scalar_one()

    async def get_sale(self, conn: AsyncConnection, slug: str) -> Sale | None:
        row = (await conn.execute(_GET_SALE, {"slug": slug})).first()
        return None if row is None else sale_from_row(row)

    # -- the redemption ledger (cart_svc/redemptions.py says why it locks as it does) ---------------------
    async def lock_coupon(self, conn: AsyncConnection, code: str) -> Coupon | None:
        row = (await conn.execute(_LOCK_COUPON, {"code": code})).first()
        return None if row is None else coupon_from_row(row)

    async def redemption_of(self, conn: AsyncConnection, order_token: str) -> Redemption | None:
        row = (await conn.execute(_REDEMPTION_OF, {"order_token": order_token})).first()
        return None if row is None else Redemption(row.code, row.user_id, row.status)

    async def hold_redemption(self, conn: AsyncConnection, *, code: str, user_id: str, order_token: str) -> tuple[str, int]:
        """Insert the order's held redemption and count it: (redemption id, the coupon's new count).

        Raises HoldRefused when the order already has a row or the coupon's limit is reached: the
        caller must then roll back (the row may be in). Call with the coupon's row lock held."""
        inserted = (await conn.execute(_HOLD_REDEMPTION, {
            "redemption_id": str(uuid.uuid4()), "code": code, "user_id": user_id, "order_token": order_token,
        })).first()
        if inserted is None:
            raise HoldRefused("order_taken")
        count = (await conn.execute(_COUNT_REDEMPTION, {"w_code": code})).scalar()
        if count is None:
            raise HoldRefused("limit_reached")
        return inserted.redemption_id, count

    async def release_redemption(self, conn: AsyncConnection, order_token: str) -> Released | None:
        """Mark the order's held redemption released and uncount it; None if it held nothing (any more).
        Call with the coupon's row lock held."""
        released = (await conn.execute(_RELEASE_REDEMPTION, {"w_order_token": order_token})).first()
        if released is None:
            return None
        count = (await conn.execute(_UNCOUNT_REDEMPTION, {"w_code": released.code})).scalar_one()
        return Released(released.code, released.user_id, count)

    # -- conversions ----------------------------------------------------------------------------------------
    async def conversion(self, conn: AsyncConnection, order_token: str, *, for_update: bool = False) -> Conversion | None:
        row = (await conn.execute(_CONVERSION_LOCKED if for_update else _CONVERSION, {"order_token": order_token})).first()
        return None if row is None else _conversion(row)

    async def lock_cart_for_conversion(self, conn: AsyncConnection, token: str, order_token: str,
                                       ) -> tuple[Cart | None, Conversion | None, dict[str, PlanRef]]:
        """`get_cart(token, for_update=True)`, `conversion(order_token)` and the plans of the cart's
        lines (`plans_by_id`), in one statement. The cart is as it is once locked; the conversion
        and the plans are as they were when the statement began: before the lock, if it had to
        wait for it (another unit of work had the cart), so they may have changed since."""
        rows = (await conn.execute(_LOCK_CART_FOR_CONVERSION, {"token": token,
                                                               "order_token": order_token})).mappings().all()
        if not rows:
            return None, None, {}
        first = rows[0]
        conversion = None
        if first["c_order_token"] is not None:
            conversion = Conversion(first["c_order_token"], first["c_cart_token"], first["c_user_id"],
                                    first["c_status"], from_json(first["c_snapshot"]))
        found = {row["p_plan_id"]: PlanRef(plan_id=row["p_plan_id"], internship_id=row["p_internship_id"],
                                           title=row["p_title"], period_value=row["p_period_value"],
                                           period_unit=row["p_period_unit"], list_price=row["p_price"])
                 for row in rows if row["p_plan_id"] is not None}
        return cart_from_row(first), conversion, found

    async def converted_of_cart(self, conn: AsyncConnection, cart_token: str) -> Conversion | None:
        """The conversion that holds the cart now (status converted), if any."""
        row = (await conn.execute(_CONVERTED_OF_CART, {"cart_token": cart_token})).first()
        return None if row is None else _conversion(row)

    async def save_and_insert_conversion(self, conn: AsyncConnection, cart: Cart, totals: CartTotals,
                                         snapshot: ConvertedCart) -> bool:
        """`save_cart` and the conversion's row (converted, with its snapshot) in one statement;
        False when the order token already converted a cart (then the cart is saved all the same:
        the caller must roll back)."""
        cart.version += 1
        row = (await conn.execute(_SAVE_AND_CONVERT, {
            "w_token": cart.token, **_values(cart, totals), "c_order_token": snapshot.order_token,
            "c_cart_token": snapshot.cart_token, "c_user_id": snapshot.user_id, "c_snapshot": to_json(snapshot),
            "c_created_at": snapshot.converted_at})).first()
        return row is not None

    async def release_conversion(self, conn: AsyncConnection, order_token: str) -> bool:
        done = (await conn.execute(_RELEASE_CONVERSION, {"w_order_token": order_token})).first()
        return done is not None

    # -- the admin's writes ------------------------------------------------------------------------------
    # Inserts use ON CONFLICT DO NOTHING and report whether the row was new, so a duplicate is found
    # by the database itself, also when two admins create the same code at once.
    async def missing_internships(self, conn: AsyncConnection, ids: Iterable[str]) -> list[str]:
        wanted = sorted(set(ids))
        if not wanted:
            return []
        found = set((await conn.execute(
            select(internships.c.internship_id).where(internships.c.internship_id.in_(wanted)))).scalars())
        return [internship_id for internship_id in wanted if internship_id not in found]

    async def insert_coupon(self, conn: AsyncConnection, coupon: Coupon) -> bool:
        row = (await conn.execute(upsert(coupons).values(
            code=coupon.code, kind=coupon.kind, value=coupon.value, currency=coupon.currency,
            min_subtotal=coupon.min_subtotal, starts_at=coupon.starts_at, ends_at=coupon.ends_at,
            max_redemptions=coupon.max_redemptions, max_redemptions_per_user=coupon.max_redemptions_per_user,
            internship_ids=sorted(coupon.internship_ids), listed=coupon.listed,
        ).on_conflict_do_nothing(index_elements=[coupons.c.code]).returning(coupons.c.code))).first()
        return row is not None

    async def insert_sale(self, conn: AsyncConnection, sale: Sale) -> bool:
        row = (await conn.execute(upsert(sales).values(
            sale_slug=sale.slug, kind=sale.kind, value=sale.value, internship_ids=sorted(sale.internship_ids),
            starts_at=sale.starts_at, ends_at=sale.ends_at,
        ).on_conflict_do_nothing(index_elements=[sales.c.sale_slug]).returning(sales.c.sale_slug))).first()
        return row is not None

    async def insert_internship(self, conn: AsyncConnection, entry: InternshipEntry) -> bool:
        """False when the internship id or any plan id is taken; the caller must then roll back."""
        row = (await conn.execute(upsert(internships).values(
            internship_id=entry.internship_id, title=entry.title, description=entry.description,
        ).on_conflict_do_nothing().returning(internships.c.internship_id))).first()
        if row is None:
            return False
        added = (await conn.execute(upsert(plans).values([
            {"plan_id": plan.plan_id, "internship_id": entry.internship_id, "period_value": plan.period_value,
             "period_unit": plan.period_unit, "price": plan.list_price, "currency": "INR"}
            for plan in entry.plans
        ]).on_conflict_do_nothing().returning(plans.c.plan_id))).all()
        return len(added) == len(entry.plans)

    async def lock_rate(self, conn: AsyncConnection, currency: str) -> Decimal | None:
        """The current rate, its row locked so two changes of one currency log the right old rate."""
        return (await conn.execute(
            select(exchange_rates.c.rate).where(exchange_rates.c.currency == currency).with_for_update())).scalar()

    async def set_rate(self, conn: AsyncConnection, rate: ExchangeRate, old_rate: Decimal | None,
                       changed_by: str) -> datetime.datetime:
        stamped = (await conn.execute(
            upsert(exchange_rates).values(currency=rate.currency, rate=rate.rate, updated_at=func.now())
            .on_conflict_do_update(index_elements=[exchange_rates.c.currency],
                                   set_={"rate": rate.rate, "updated_at": func.now()})
            .returning(exchange_rates.c.updated_at))).scalar_one()
        await conn.execute(insert(exchange_rate_changes).values(
            currency=rate.currency, old_rate=old_rate, new_rate=rate.rate, changed_by=changed_by, changed_at=stamped))
        return stamped


# -- rows ⇄ domain values --------------------------------------------------------------------------------
def coupon_from_row(row: Any) -> Coupon:
    return Coupon(
        code=row.code, kind=row.kind, value=row.value, currency=row.currency.strip(), min_subtotal=row.min_subtotal,
        starts_at=row.starts_at, ends_at=row.ends_at, max_redemptions=row.max_redemptions,
        max_redemptions_per_user=row.max_redemptions_per_user, redeemed_count=row.redeemed_count,
        internship_ids=frozenset(row.internship_ids), listed=row.listed,
    )


def sale_from_row(row: Any) -> Sale:
    return Sale(slug=row.sale_slug, kind=row.kind, value=row.value, internship_ids=frozenset(row.internship_ids),
                starts_at=row.starts_at, ends_at=row.ends_at)


def _plan(row: Any) -> PlanRef:
    return PlanRef(plan_id=row.plan_id, internship_id=row.internship_id, title=row.title,
                   period_value=row.period_value, period_unit=row.period_unit, list_price=row.price)


def _conversion(row: Any) -> Conversion:
    return Conversion(row.order_token, row.cart_token, row.user_id, row.status, from_json(row.snapshot))


def _values(cart: Cart, totals: CartTotals) -> dict[str, Any]:
    return {
        "user_id": cart.user_id,
        "status": cart.status,
        "items": [_line_json(line) for line in cart.lines],
        "currency": cart.currency,
        "sale_slug": cart.sale_slug,
        "discount_code": cart.coupon_code,
        "subtotal": totals.subtotal,
        "discount_amount": totals.discount_amount,
        "tax_rate": totals.tax_rate,
        "tax_amount": totals.tax_amount,
        "total": totals.total,
        "expires_at": cart.expires_at,
        "device_id": cart.device_id,
        "analytics_data": [{"name": name, "value": value} for name, value in cart.analytics_data],
        "order_token": cart.order_token,
        "version": cart.version,
        "updated_at": cart.updated_at,
    }


def _line_json(line: CartLine) -> dict[str, Any]:
    plan = line.plan
    return {
        "item_id": line.item_id,
        "plan_id": plan.plan_id,
        "internship_id": plan.internship_id,
        "title": plan.title,
        "period_value": plan.period_value,
        "period_unit": plan.period_unit,
        "list_price": format_amount(plan.list_price),
        "quantity": line.quantity,
    }


def cart_from_row(row: Any) -> Cart:
    lines = [
        CartLine(
            item_id=item["item_id"],
            quantity=item["quantity"],
            plan=PlanRef(plan_id=item["plan_id"], internship_id=item["internship_id"], title=item["title"],
                         period_value=item["period_value"], period_unit=item["period_unit"],
                         list_price=Decimal(item["list_price"])),
        )
        for item in row["items"]
    ]
    return Cart(
        token=str(row["token"]),
        user_id=row["user_id"],
        status=row["status"],
        lines=lines,
        currency=row["currency"].strip(),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        sale_slug=row["sale_slug"],
        coupon_code=row["discount_code"],
        device_id=row["device_id"],
        analytics_data=[(entry["name"], entry["value"]) for entry in row["analytics_data"]],
        version=row["version"],
        order_token=row["order_token"],
    )
