"""Human order numbers (INT-<year>-<number>) over real gRPC and PostgreSQL: taken in the statement
that inserts the order from its year's sequence (migration ordering_0005), increasing, unique
when many orders are placed at once, and counted afresh in a new year."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import random
import re
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import utc_now
from order_svc.domain.invoices import order_number, order_year
from order_svc.repository import OrderRepository
from order_svc.tables import orders
from tests.integration.order.conftest import OrderStack, rows
from tests.support.tokens import new_user

NUMBER = re.compile(r"INT-(\d{4})-(\d{6,})")


def parsed(order_number: str) -> tuple[int, int]:
    match = NUMBER.fullmatch(order_number)
    assert match is not None, order_number
    return int(match.group(1)), int(match.group(2))


async def place_one(stack: OrderStack) -> str:
    user = new_user()
    order = await stack.place(user, stack.fakes.cart.add_cart(user_id=user))
    return order.order_number


async def test_an_order_is_numbered_in_the_year_it_was_placed_in_india(stack: OrderStack) -> None:
    number = await place_one(stack)
    year, _ = parsed(number)
    assert year == order_year(utc_now())
    [stored] = await rows(stack.engine, select(orders.c.order_year, orders.c.order_number)
                          .where(orders.c.order_number == parsed(number)[1], orders.c.order_year == year))
    assert (stored.order_year, stored.order_number) == parsed(number)


async def test_numbers_increase_order_after_order(stack: OrderStack) -> None:
    numbers = [parsed(await place_one(stack))[1] for _ in range(4)]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4, numbers


async def test_orders_placed_at_once_get_distinct_numbers(stack: OrderStack) -> None:
    numbers = await asyncio.gather(*(place_one(stack) for _ in range(24)))
    assert len(set(numbers)) == 24, sorted(numbers)
    stored = await rows(stack.engine, select(orders.c.order_year, orders.c.order_number))
    assert len({(row.order_year, row.order_number) for row in stored}) == len(stored)


async def copy_in_year(stack: OrderStack, conn: AsyncConnection, year: int, day: int) -> str:
    """A copy of a placed order (new tokens), placed on `day` of June of `year`, inserted as the
    repository inserts any order; its number as the API writes it."""
    [template] = await rows(stack.engine, select(orders.c.order_token).limit(1))
    repository = OrderRepository()
    record = await repository.get_order(conn, str(template.order_token))
    assert record is not None
    created = datetime.datetime(year, 6, 1, 12, 0, tzinfo=datetime.UTC) + datetime.timedelta(days=day)
    fresh = dataclasses.replace(record, order_token=str(uuid.uuid4()), cart_token=str(uuid.uuid4()), created_at=created)
    inserted = await repository.insert_order(conn, fresh)
    assert inserted is not None
    return order_number(inserted.order_number, inserted.created_at)


async def test_a_new_year_counts_from_one(stack: OrderStack) -> None:
    """Orders of a year no order was placed in yet: that year's first is number 1, its second
    number 2, whatever this year has reached."""
    await place_one(stack)
    year = random.randrange(3000, 9000)  # a year of its own: the session's database is shared
    async with stack.engine.begin() as conn:
        numbered = [await copy_in_year(stack, conn, year, day) for day in range(2)]
    assert numbered == [f"INT-{year}-000001", f"INT-{year}-000002"], numbered


async def test_the_first_orders_of_a_year_at_once_share_its_new_sequence(stack: OrderStack) -> None:
    """Two transactions each insert the first order of a new year: the second waits for the
    first's new sequence (its own CREATE gives way) and takes the next number from it."""
    await place_one(stack)
    year = random.randrange(3000, 9000)
    async with stack.engine.connect() as first, stack.engine.connect() as second:
        await first.begin()
        await second.begin()
        one = await copy_in_year(stack, first, year, 0)
        racing = asyncio.create_task(copy_in_year(stack, second, year, 1))
        await asyncio.sleep(0.5)  # the second is inside next_order_number, waiting on the first
        await first.commit()
        two = await asyncio.wait_for(racing, timeout=10)
        await second.commit()
    assert (one, two) == (f"INT-{year}-000001", f"INT-{year}-000002"), (one, two)
