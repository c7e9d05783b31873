"""Request checks every service needs, listing every problem at once (code 1000) before anything
is read or written. Each check appends "field: what is wrong" to a list; `raise_if_any` turns a
non-empty list into ValidationFailed."""

from __future__ import annotations

import uuid

from common.errors import ValidationFailed
from common.regions import is_country_code, is_indian_state_code


def has_control_characters(value: str) -> bool:
    """U+0000–U+001F and U+007F (CONTRACT.md "Input")."""
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def check_uuid(problems: list[str], field: str, value: str, *, required: bool = True) -> None:
    if not value:
        if required:
            problems.append(f"{field}: required")
        return
    try:
        uuid.UUID(value)
    except ValueError:
        problems.append(f"{field}: must be a UUID")


def check_text(problems: list[str], field: str, value: str, max_length: int) -> None:
    if len(value) > max_length:
        problems.append(f"{field}: at most {max_length} characters")
    if has_control_characters(value):
        problems.append(f"{field}: must not contain control characters")


def check_billing(problems: list[str], country: str, state: str) -> None:
    if not country:
        if state:
            problems.append("billing.country: required when billing.state is given")
        return
    if not is_country_code(country):
        problems.append("billing.country: must be an ISO 3166-1 alpha-2 code")
    elif country.upper() == "IN" and state and not is_indian_state_code(state):
        problems.append("billing.state: must be an Indian state or union territory code (GST), e.g. KA")
    elif country.upper() != "IN" and state:
        check_text(problems, "billing.state", state, 64)


def raise_if_any(problems: list[str]) -> None:
    if problems:
        raise ValidationFailed(problems)
