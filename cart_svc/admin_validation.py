"""Admin requests checked field by field (every problem listed at once, code 1000), then turned
into the domain values the rest of the service already uses (Coupon, Sale, InternshipEntry)."""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from cart_svc.commands import NewCoupon, NewInternship, NewSale
from cart_svc.domain.cart import PlanRef
from cart_svc.domain.catalog import InternshipEntry
from cart_svc.domain.coupons import Coupon
from cart_svc.domain.currency import BASE_CURRENCY, ExchangeRate
from cart_svc.domain.reductions import ReductionKind, is_reduction_kind
from cart_svc.domain.sales import Sale
from cart_svc.validation import check_period, check_text, raise_if_any
from common.clock import parse_rfc3339
from common.money import SUPPORTED_CURRENCIES, ZERO, parse_amount

# fullmatch, not match with `$`: `$` also matches before a trailing newline.
COUPON_CODE: Final = re.compile(r"[A-Za-z0-9_-]{3,50}", re.ASCII)
SALE_SLUG: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,63}", re.ASCII)
# numeric(18, 8): at most 10 digits before the point, 8 after
RATE: Final = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,8})?", re.ASCII)
RATED_CURRENCIES: Final = ("USD", "EUR", "GBP")
MAX_INTERNSHIP_IDS: Final = 100
MAX_PLANS: Final = 6
MAX_TITLE: Final = 200
MAX_DESCRIPTION: Final = 2000
_MONTHS_PER: Final = {"month": 1, "year": 12}


def coupon_from(command: NewCoupon) -> Coupon:
    problems: list[str] = []
    if not COUPON_CODE.fullmatch(command.code):
        problems.append("code: 3-50 letters, digits, '-' or '_'")
    kind = _kind(problems, command.kind)
    value = _reduction_value(problems, kind, command.value)
    currency = command.currency or BASE_CURRENCY
    if currency not in SUPPORTED_CURRENCIES:
        problems.append(f"currency: must be one of {', '.join(SUPPORTED_CURRENCIES)}")
    elif kind == "percent" and currency != BASE_CURRENCY:
        problems.append("currency: only a fixed coupon has a currency")
    min_subtotal = _amount(problems, "min_subtotal", command.min_subtotal or "0")
    starts_at, ends_at = _window(problems, command.starts_at, command.ends_at)
    for name, limit in (("max_redemptions", command.max_redemptions),
                        ("max_redemptions_per_user", command.max_redemptions_per_user)):
        if limit < 0:
            problems.append(f"{name}: must be 0 (unlimited) or more")
    ids = _internship_ids(problems, command.internship_ids)
    raise_if_any(problems)
    assert kind is not None and value is not None and min_subtotal is not None  # no problems: all parsed
    return Coupon(code=command.code.upper(), kind=kind, value=value, currency=currency, min_subtotal=min_subtotal,
                  starts_at=starts_at, ends_at=ends_at, max_redemptions=command.max_redemptions,
                  max_redemptions_per_user=command.max_redemptions_per_user, internship_ids=ids,
                  listed=command.listed)


def sale_from(command: NewSale) -> Sale:
    problems: list[str] = []
    if not SALE_SLUG.fullmatch(command.sale_slug):
        problems.append("sale_slug: lower-case letters, digits and '-', at most 64 characters")
    kind = _kind(problems, command.kind)
    value = _reduction_value(problems, kind, command.value)
    starts_at, ends_at = _window(problems, command.starts_at, command.ends_at)
    ids = _internship_ids(problems, command.internship_ids)
    raise_if_any(problems)
    assert kind is not None and value is not None
    return Sale(slug=command.sale_slug, kind=kind, value=value, internship_ids=ids, starts_at=starts_at, ends_at=ends_at)


def internship_from(command: NewInternship) -> InternshipEntry:
    """Missing ids are generated (uuid4); a period may appear once, counting 12 months as 1 year."""
    problems: list[str] = []
    internship_id = _id_or_new(problems, "internship_id", command.internship_id)
    title = command.title.strip()
    if not title:
        problems.append("title: required")
    elif len(title) > MAX_TITLE:
        problems.append(f"title: at most {MAX_TITLE} characters")
    check_text(problems, "title", title[:MAX_TITLE], MAX_TITLE)
    check_text(problems, "description", command.description, MAX_DESCRIPTION)
    if not 1 <= len(command.plans) <= MAX_PLANS:
        problems.append(f"plans: between 1 and {MAX_PLANS} plans")
    plans: list[PlanRef] = []
    seen_months: dict[int, int] = {}
    seen_ids: dict[str, int] = {}
    for index, plan in enumerate(command.plans[:MAX_PLANS]):
        field = f"plans[{index}]"
        plan_id = _id_or_new(problems, f"{field}.plan_id", plan.plan_id)
        if plan_id in seen_ids:
            problems.append(f"{field}.plan_id: same as plans[{seen_ids[plan_id]}]")
        seen_ids.setdefault(plan_id, index)
        price = _amount(problems, f"{field}.price", plan.price, positive=True)
        if plan.period is None:
            problems.append(f"{field}.period: required")
            continue
        value, unit = plan.period
        before = len(problems)
        check_period(problems, f"{field}.period", value, unit)
        if len(problems) > before:
            continue
        months = value * _MONTHS_PER[unit]
        if months in seen_months:
            problems.append(f"{field}.period: same length as plans[{seen_months[months]}]")
        seen_months.setdefault(months, index)
        if price is not None:
            plans.append(PlanRef(plan_id, internship_id, title, value, unit, price))
    raise_if_any(problems)
    return InternshipEntry(internship_id, title, command.description, tuple(plans))


def rate_from(currency: str, rate: str) -> ExchangeRate:
    problems: list[str] = []
    if currency == BASE_CURRENCY:
        problems.append("currency: the INR rate is fixed at 1")
    elif currency not in RATED_CURRENCIES:
        problems.append(f"currency: must be one of {', '.join(RATED_CURRENCIES)}")
    if not RATE.fullmatch(rate) or Decimal(rate) == 0:
        problems.append("rate: a positive decimal with at most 8 places (units of the currency per 1 INR), e.g. '0.012'")
    raise_if_any(problems)
    return ExchangeRate(currency, Decimal(rate))


def _kind(problems: list[str], kind: str) -> ReductionKind | None:
    if is_reduction_kind(kind):
        return kind
    problems.append("kind: must be 'percent' or 'fixed'")
    return None


def _reduction_value(problems: list[str], kind: ReductionKind | None, text: str) -> Decimal | None:
    value = _amount(problems, "value", text, positive=True)
    if value is not None and kind == "percent" and value > 100:
        problems.append("value: a percentage must be at most 100")
        return None
    return value


def _amount(problems: list[str], field: str, text: str, *, positive: bool = False) -> Decimal | None:
    try:
        value = parse_amount(text)
    except ValueError:
        problems.append(f"{field}: a decimal amount with at most 2 places, e.g. '1499.00'")
        return None
    if positive and value <= ZERO:
        problems.append(f"{field}: must be more than 0")
        return None
    return value


def _window(problems: list[str], starts: str, ends: str) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    moments: list[datetime.datetime | None] = []
    for field, text in (("starts_at", starts), ("ends_at", ends)):
        try:
            moments.append(parse_rfc3339(text) if text else None)
        except ValueError:
            problems.append(f"{field}: an RFC 3339 timestamp with a zone, e.g. '2026-12-01T00:00:00Z'")
            moments.append(None)
    starts_at, ends_at = moments
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        problems.append("ends_at: must be after starts_at")
    return starts_at, ends_at


def _internship_ids(problems: list[str], ids: Sequence[str]) -> frozenset[str]:
    if len(ids) > MAX_INTERNSHIP_IDS:
        problems.append(f"internship_ids: at most {MAX_INTERNSHIP_IDS}")
    canonical: set[str] = set()
    for index, text in enumerate(ids[:MAX_INTERNSHIP_IDS]):
        try:
            canonical.add(str(uuid.UUID(text)))
        except ValueError:
            problems.append(f"internship_ids[{index}]: must be a UUID")
    return frozenset(canonical)


def _id_or_new(problems: list[str], field: str, text: str) -> str:
    if not text:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(text))
    except ValueError:
        problems.append(f"{field}: must be a UUID")
        return text
