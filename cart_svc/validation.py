"""Request checks that list every problem at once (code 1000), before anything is read or written.

Each check takes plain values and appends "field: what is wrong" to a list; `raise_if_any` turns
a non-empty list into ValidationFailed. Nothing a client sends ever sets a price, total or status:
the request messages have no such fields, and the service computes them.
"""

from __future__ import annotations

import re

from common.money import SUPPORTED_CURRENCIES
from common.validation import check_billing, check_text, check_uuid, raise_if_any  # noqa: F401 (re-exported for cart_svc)

COUPON_CODE = re.compile(r"[A-Za-z0-9_-]{3,50}")
SALE_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
MAX_ANALYTICS_ENTRIES = 50
MAX_ITEMS_PER_REQUEST = 20


def check_quantity(problems: list[str], field: str, quantity: int) -> None:
    if not 1 <= quantity <= 10:
        problems.append(f"{field}: must be between 1 and 10")


def check_currency(problems: list[str], field: str, currency: str) -> None:
    if currency and currency not in SUPPORTED_CURRENCIES:
        problems.append(f"{field}: must be one of {', '.join(SUPPORTED_CURRENCIES)}")


def check_period(problems: list[str], field: str, value: int, unit: str) -> None:
    if unit not in ("month", "year"):
        problems.append(f"{field}.unit: must be 'month' or 'year'")
    if not 1 <= value <= 36:
        problems.append(f"{field}.value: must be between 1 and 36")


def check_item_choice(problems: list[str], field: str, plan_id: str, internship_id: str,
                      period: tuple[int, str] | None, quantity: int) -> None:
    """A line names a plan_id, or an internship_id with a period; not both, not neither."""
    if plan_id:
        check_uuid(problems, f"{field}.plan_id", plan_id)
        if internship_id or period:
            problems.append(f"{field}: give plan_id, or internship_id with period, not both")
    elif internship_id:
        check_uuid(problems, f"{field}.internship_id", internship_id)
        if period is None:
            problems.append(f"{field}.period: required with internship_id")
        else:
            check_period(problems, f"{field}.period", *period)
    else:
        problems.append(f"{field}: plan_id, or internship_id with period, is required")
    check_quantity(problems, f"{field}.quantity", quantity)


def check_analytics(problems: list[str], entries: list[tuple[str, str]]) -> None:
    if len(entries) > MAX_ANALYTICS_ENTRIES:
        problems.append(f"analytics_data: at most {MAX_ANALYTICS_ENTRIES} entries")
    for index, (name, value) in enumerate(entries[:MAX_ANALYTICS_ENTRIES]):
        if not name:
            problems.append(f"analytics_data[{index}].name: required")
        check_text(problems, f"analytics_data[{index}].name", name, 64)
        check_text(problems, f"analytics_data[{index}].value", value, 512)


def check_sale_slug(problems: list[str], field: str, slug: str) -> None:
    if slug and not SALE_SLUG.fullmatch(slug):
        problems.append(f"{field}: lower-case letters, digits and '-', at most 64 characters")


def check_coupon_code(problems: list[str], field: str, code: str) -> None:
    if not COUPON_CODE.fullmatch(code):
        problems.append(f"{field}: 3-50 letters, digits, '-' or '_'")


