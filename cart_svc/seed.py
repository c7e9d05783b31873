"""Load the sample catalog `make run` starts with: python -m cart_svc.seed (safe to run again).

Ids are fixed so links, tests and the demo can name a plan; prices are INR, tax-exclusive. Besides
the internships and exchange rates: the listed coupon WELCOME10 (10% off, unlimited; the checkout
page suggests it) and the running sale `launch-week` (5% off every internship, no end; carts get it
by naming its slug).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc.tables import coupons, exchange_rates, internships, plans, sales
from common.db import create_engine
from common.settings import load_settings

# (internship_id, title, description, [(plan_id, months, price)])
SAMPLE_INTERNSHIPS = [
    ("5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000001", "Backend Engineering with Python",
     "Build and operate production APIs with a mentor.",
     [("7a1e0000-0000-4000-8000-000000000101", 1, "1499.00"),
      ("7a1e0000-0000-4000-8000-000000000103", 3, "3999.00"),
      ("7a1e0000-0000-4000-8000-000000000106", 6, "6999.00")]),
    ("5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000002", "Data Science Fundamentals",
     "From notebooks to a reviewed analysis of real data.",
     [("7a1e0000-0000-4000-8000-000000000201", 1, "1299.00"),
      ("7a1e0000-0000-4000-8000-000000000203", 3, "3499.00")]),
    ("5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000003", "Product Design (UI/UX)",
     "Research, wireframes and a shipped design system component.",
     [("7a1e0000-0000-4000-8000-000000000301", 1, "999.00"),
      ("7a1e0000-0000-4000-8000-000000000303", 3, "2699.00"),
      ("7a1e0000-0000-4000-8000-000000000306", 6, "4799.00")]),
    ("5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000004", "Cloud & DevOps",
     "CI/CD, containers and on-call basics on a real service.",
     [("7a1e0000-0000-4000-8000-000000000403", 3, "4499.00"),
      ("7a1e0000-0000-4000-8000-000000000406", 6, "7999.00")]),
]

# units of the currency per 1 INR
SAMPLE_RATES = {"USD": "0.01200000", "EUR": "0.01100000", "GBP": "0.00950000"}

WELCOME_COUPON = "WELCOME10"  # listed: offered to every cart
LAUNCH_SALE = "launch-week"


async def load_sample_catalog(conn: AsyncConnection) -> None:
    for internship_id, title, description, plan_rows in SAMPLE_INTERNSHIPS:
        await conn.execute(insert(internships).values(internship_id=internship_id, title=title, description=description)
                           .on_conflict_do_nothing())
        for plan_id, months, price in plan_rows:
            await conn.execute(insert(plans).values(plan_id=plan_id, internship_id=internship_id, period_value=months,
                                                    period_unit="month", price=Decimal(price), currency="INR")
                               .on_conflict_do_nothing())
    for currency, rate in SAMPLE_RATES.items():
        await conn.execute(insert(exchange_rates).values(currency=currency, rate=Decimal(rate)).on_conflict_do_nothing())
    await conn.execute(insert(coupons).values(code=WELCOME_COUPON, kind="percent", value=Decimal("10"), listed=True)
                       .on_conflict_do_nothing())
    await conn.execute(insert(sales).values(sale_slug=LAUNCH_SALE, kind="percent", value=Decimal("5"))
                       .on_conflict_do_nothing())


async def main() -> None:
    engine = create_engine(load_settings(), "cart", pool_size=1)
    async with engine.begin() as conn:
        await load_sample_catalog(conn)
    await engine.dispose()
    print(f"sample catalog loaded: {len(SAMPLE_INTERNSHIPS)} internships, coupon {WELCOME_COUPON}, sale {LAUNCH_SALE}")


if __name__ == "__main__":
    asyncio.run(main())
