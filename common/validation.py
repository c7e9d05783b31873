"""Request checks every service needs, listing every problem at once (code 1000) before anything
is read or written. Each check appends "field: what is wrong" to a list; `raise_if_any` turns a
non-empty list into ValidationFailed."""

from __future__ import annotations

import re
import uuid
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from common.errors import ValidationFailed
from common.regions import is_country_code, is_indian_state_code

_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    """U+0000–U+001F and U+007F (CONTRACT.md "Input")."""
    return _CONTROL_CHARACTER.search(value) is not None


def control_character_fields(message: Message, prefix: str = "") -> list[str]:
    """ "field: must not contain control characters" for every text field of a request, at any
    depth, that has one (CONTRACT.md "Input": any text field → 1000). Checked once for every RPC
    (common/interceptors.py) before any use case sees the request."""
    problems: list[str] = []
    for field, value in message.ListFields():
        name = prefix + field.name
        if field.type == FieldDescriptor.TYPE_STRING:
            if any(has_control_characters(text) for text in _values(field, value)):
                problems.append(f"{name}: must not contain control characters")
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                for key, item in value.items():
                    if isinstance(key, str) and has_control_characters(key):
                        problems.append(f"{name}: keys must not contain control characters")
                    elif isinstance(item, Message):
                        problems.extend(control_character_fields(item, f"{name}.{key}."))
                    elif isinstance(item, str) and has_control_characters(item):
                        problems.append(f"{name}.{key}: must not contain control characters")
            elif field.is_repeated:
                for index, item in enumerate(value):
                    problems.extend(control_character_fields(item, f"{name}[{index}]."))
            else:
                problems.extend(control_character_fields(value, f"{name}."))
    return problems


def _values(field: FieldDescriptor, value: Any) -> list[str]:
    return list(value) if field.is_repeated else [value]


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
