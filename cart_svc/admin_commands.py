"""What an admin asks for, as plain values exactly as sent (admin_validation.py checks them)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class NewCoupon:
    code: str
    kind: str
    value: str
    currency: str = ""
    min_subtotal: str = ""
    starts_at: str = ""
    ends_at: str = ""
    max_redemptions: int = 0
    max_redemptions_per_user: int = 0
    internship_ids: tuple[str, ...] = ()
    listed: bool = False


@dataclasses.dataclass(frozen=True)
class NewSale:
    sale_slug: str
    kind: str
    value: str
    internship_ids: tuple[str, ...] = ()
    starts_at: str = ""
    ends_at: str = ""


@dataclasses.dataclass(frozen=True)
class NewPlan:
    period: tuple[int, str] | None
    price: str
    plan_id: str = ""


@dataclasses.dataclass(frozen=True)
class NewInternship:
    title: str
    plans: tuple[NewPlan, ...]
    internship_id: str = ""
    description: str = ""
