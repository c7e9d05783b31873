"""Catalog reads: the internships with their plans, and a sale by its slug."""

from __future__ import annotations

from cart_svc.domain.catalog import InternshipEntry
from cart_svc.domain.sales import Sale
from cart_svc.repository import Repository
from common.errors import CheckoutError, ErrorCode
from common.uow import UnitOfWorkFactory, reading


class CatalogService:
    def __init__(self, uow: UnitOfWorkFactory, repository: Repository | None = None) -> None:
        self._uow = uow
        self._repo = repository or Repository()

    async def internships(self) -> list[InternshipEntry]:
        async with reading(self._uow) as uow:
            return await self._repo.list_internships(uow.conn)

    async def sale(self, slug: str) -> Sale:
        async with reading(self._uow) as uow:
            sale = await self._repo.get_sale(uow.conn, slug)
        if sale is None:
            raise CheckoutError(ErrorCode.ITEM_NOT_FOUND, "sale not found", suggested_action="check the sale link")
        return sale
