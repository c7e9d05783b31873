"""What a client asks the cart service to do, as plain values exactly as sent (the servicers build
these; the use cases check them)."""

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


# -- CartCheckout (order_svc) ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ConvertCart:
    cart_token: str
    order_token: str
    user_id: str
    billing: BillingChoice = BillingChoice()


@dataclasses.dataclass(frozen=True)
class ReleaseCart:
    order_token: str
    reopen_cart: bool = False
    reason: str = ""


# -- the admin (admin_validation.py checks these) ---------------------------------------------------
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
