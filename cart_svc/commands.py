"""What a client asks the cart service to do, as plain values (the servicer builds these)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ItemChoice:
    """A plan by id, or an internship's plan by period."""

    plan_id: str = ""
    internship_id: str = ""
    period: tuple[int, str] | None = None
    quantity: int = 1


@dataclasses.dataclass(frozen=True)
class NewCart:
    items: tuple[ItemChoice, ...] = ()
    currency: str = "INR"
    sale_slug: str = ""
    device_id: str = ""
    analytics_data: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class BillingChoice:
    country: str = ""
    state: str = ""
