"""order_svc's periodic passes (common.workers.periodic, every ORDER_SWEEP_INTERVAL seconds):

- PlacementRecovery: placements still `converting` after ORDER_PLACEMENT_TIMEOUT were abandoned
  by their client (it crashed or gave up between the saga's steps): marked `abandoned`, then
  ReleaseCart(order token, reopen_cart) gives the cart and its coupon back, then `released`.
  ReleaseCart is idempotent, so a release that failed (or a worker that died mid-way) is simply
  tried again: an abandoned placement's claim (its `updated_at`) goes stale after `claim_lease`
  and the next pass, of any replica, takes it. Rows are taken with FOR UPDATE SKIP LOCKED in
  short transactions; no connection is held across the RPC.
- OrderExpiry: unpaid orders (pending, awaiting_payment, payment_failed) past `expires_at` →
  expired through move_order (checkout.order.expired: cart_svc releases the coupon hold).
  Finished idempotency keys past their retention are deleted in the same pass.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from common.clock import utc_now
from common.errors import CheckoutError
from common.uow import UnitOfWorkFactory
from order_svc.clients import CartCheckout
from order_svc.domain.idempotency import KEY_RETENTION_HOURS
from order_svc.moves import move_order
from order_svc.repository import OrderRepository, PlacementRecord

ACTOR = "order_sweeper"
_log = logging.getLogger(__name__)


class PlacementRecovery:
    def __init__(self, uow: UnitOfWorkFactory, repository: OrderRepository, cart: CartCheckout, *,
                 timeout: datetime.timedelta, claim_lease: datetime.timedelta, batch: int,
                 clock: Callable[[], datetime.datetime] = utc_now) -> None:
        self._uow = uow
        self._repository = repository
        self._cart = cart
        self._timeout = timeout
        self._claim_lease = claim_lease
        self._batch = batch
        self._clock = clock

    async def one_pass(self) -> list[str]:
        """The order tokens of the placements released by this pass."""
        now = self._clock()
        async with self._uow() as uow:
            abandoned = await self._repository.abandon_stale(uow.conn, now - self._timeout, now, self._batch)
            for placement in abandoned:
                uow.audit(actor=ACTOR, entity_type="order_placement", entity_id=placement.order_token,
                          action="abandoned", before={"state": "converting"},
                          after={"state": "abandoned", "cart_token": placement.cart_token,
                                 "started_at": placement.created_at})
            await uow.commit()
        async with self._uow() as uow:
            retried = await self._repository.claim_abandoned(uow.conn, now - self._claim_lease, now, self._batch)
            await uow.commit()
        released = []
        for placement in [*abandoned, *retried]:
            if await self._release(placement):
                released.append(placement.order_token)
        return released

    async def _release(self, placement: PlacementRecord) -> bool:
        try:
            answer = await self._cart.release(order_token=placement.order_token, reopen_cart=True, reason="abandoned")
        except CheckoutError as error:
            _log.warning("could not release an abandoned placement's cart; it is retried later",
                         extra={"order_token": placement.order_token, "error": str(error)})
            return False
        async with self._uow() as uow:
            changed = await self._repository.mark_released(uow.conn, placement.order_token, self._clock())
            if changed:
                uow.audit(actor=ACTOR, entity_type="order_placement", entity_id=placement.order_token,
                          action="released", before={"state": "abandoned"},
                          after={"state": "released", "coupon_released": answer.coupon_released,
                                 "cart_reopened": answer.cart_reopened})
            await uow.commit()
        return changed


class OrderExpiry:
    def __init__(self, uow: UnitOfWorkFactory, repository: OrderRepository, *, batch: int,
                 clock: Callable[[], datetime.datetime] = utc_now) -> None:
        self._uow = uow
        self._repository = repository
        self._batch = batch
        self._clock = clock

    async def one_pass(self) -> list[str]:
        """The order tokens expired by this pass."""
        expired: list[str] = []
        while True:
            now = self._clock()
            async with self._uow() as uow:
                due = await self._repository.lock_unpaid_expired(uow.conn, now, self._batch)
                for order in due:
                    await move_order(uow, self._repository, order, "expired", now=now, actor=ACTOR,
                                     reason="unpaid past its expiry")
                await uow.commit()
            expired += [order.order_token for order in due]
            if len(due) < self._batch:
                break
        async with self._uow() as uow:
            await self._repository.delete_finished_keys(uow.conn, self._clock()
                                                        - datetime.timedelta(hours=KEY_RETENTION_HOURS))
            await uow.commit()
        return expired
