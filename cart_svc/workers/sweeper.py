"""The cart sweeper: reports abandoned carts, then marks open carts past their expiry as expired.
A worker of every cart_svc process (CART_SWEEP_INTERVAL, CART_SWEEP_BATCH), or once from the
command line: python -m cart_svc.workers.sweeper [--once].

- Abandoned: an active cart with items, unchanged for CART_ABANDONED_AFTER seconds, gets
  `abandoned_at` and one `checkout.cart.abandoned` (for reminder e-mails), once in its life. Only
  that column changes: the cart stays as it was, open or not. This pass runs first, so a cart that
  falls due for both in one sweep (the defaults are both 24 h) is still reported.
- Expired: an open cart past expires_at becomes `expired`. Reads never depend on it (an open cart
  past expires_at already reads as expired); it makes the stored status true for queries, reports
  and the abandoned pass.

Any number of sweepers may run at once (one inside each cart_svc process, plus this command):
each batch locks its rows with FOR UPDATE SKIP LOCKED, so two sweepers never wait for each other
nor handle the same cart, and a cart being changed right now is simply left for the next pass.
Each batch is one unit of work: its marks, events and audit rows commit together.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import logging
import signal
from collections.abc import Awaitable, Callable

from cart_svc import events
from cart_svc.cache import CartCache, build_cart_cache
from cart_svc.repository import Repository
from cart_svc.tables import plumbing
from common.clock import utc_now
from common.db import create_engine
from common.logs import configure_logging
from common.settings import Settings, load_settings
from common.uow import UnitOfWorkFactory, uow_factory
from common.workers import Worker, periodic

_log = logging.getLogger(__name__)
ACTOR = "cart_svc:sweeper"


@dataclasses.dataclass(frozen=True)
class Swept:
    abandoned: list[str]
    expired: list[str]


class CartSweeper:
    def __init__(self, uow: UnitOfWorkFactory, settings: Settings, *, repository: Repository | None = None,
                 cache: CartCache | None = None, clock: Callable[[], datetime.datetime] = utc_now) -> None:
        self._uow = uow
        self._repo = repository or Repository()
        self._cache = cache
        self._clock = clock
        self._batch = settings.cart_sweep_batch
        self._idle = datetime.timedelta(seconds=settings.cart_abandoned_after)

    async def sweep(self) -> Swept:
        """Everything due when this started (and not locked by others): abandoned first, then expired."""
        swept = Swept(await self._until_done(self.report_abandoned), await self._until_done(self.expire_due))
        if swept.abandoned or swept.expired:
            _log.info("carts swept", extra={"abandoned": len(swept.abandoned), "expired": len(swept.expired)})
        return swept

    async def expire_due(self, batch: int | None = None) -> list[str]:
        """One unit of work: up to `batch` open carts past their expiry become expired."""
        async with self._uow() as uow:
            rows = await self._repo.expire_due(uow.conn, batch or self._batch)
            for token, version in rows:
                uow.audit(actor=ACTOR, entity_type="cart", entity_id=token, action="expired", before=None,
                          after={"status": "expired", "version": version})
            await uow.commit()
        if self._cache is not None and rows:
            await asyncio.shield(self._cache.carts_closed(rows))
        return [token for token, _ in rows]

    async def report_abandoned(self, batch: int | None = None) -> list[str]:
        """One unit of work: up to `batch` idle active carts marked abandoned, one event each."""
        now = self._clock()
        async with self._uow() as uow:
            marked = await self._repo.mark_abandoned(uow.conn, now - self._idle, batch or self._batch)
            for cart, total in marked:
                uow.publish(events.ABANDONED, cart.token, events.cart_event(cart, total, now, with_updated_at=True))
                uow.audit(actor=ACTOR, entity_type="cart", entity_id=cart.token, action="abandoned", before=None,
                          after={"status": cart.status, "updated_at": cart.updated_at, "items": len(cart.lines)})
            await uow.commit()
        return [cart.token for cart, _ in marked]

    async def _until_done(self, one_batch: Callable[[int | None], Awaitable[list[str]]]) -> list[str]:
        """Batches until one is not full."""
        done: list[str] = []
        while True:
            batch = await one_batch(self._batch)
            done.extend(batch)
            if len(batch) < self._batch:
                return done


def sweeper_worker(sweeper: CartSweeper, settings: Settings) -> Worker | None:
    """The sweeper as a worker of the service process; None when CART_SWEEP_INTERVAL is 0."""
    if settings.cart_sweep_interval <= 0:
        return None
    interval = min(settings.cart_sweep_interval, float(settings.cart_ttl))  # short dev TTLs still get timely sweeps
    return periodic("cart-sweeper", interval, sweeper.sweep)


async def _main(args: argparse.Namespace) -> None:
    settings = load_settings()
    configure_logging("cart_sweeper", settings.log_level)
    engine = create_engine(settings, "cart", pool_size=2)
    cache = build_cart_cache(settings)
    sweeper = CartSweeper(uow_factory(engine, plumbing), settings, cache=cache)
    try:
        if args.once:
            await sweeper.sweep()
            return
        worker = sweeper_worker(sweeper, settings) or periodic("cart-sweeper", 60.0, sweeper.sweep)
        worker.start()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
        await worker.stop()
    finally:
        await cache.close()
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cart_svc.workers.sweeper",
                                     description="Report abandoned carts and expire carts past expires_at.")
    parser.add_argument("--once", action="store_true", help="sweep everything due now, then exit")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
