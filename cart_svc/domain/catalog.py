"""The catalog as the cart sees it: an internship with its plans (each a PlanRef, domain/cart.py)."""

from __future__ import annotations

import dataclasses

from cart_svc.domain.cart import PlanRef


@dataclasses.dataclass(frozen=True)
class InternshipEntry:
    internship_id: str
    title: str
    description: str
    plans: tuple[PlanRef, ...]
