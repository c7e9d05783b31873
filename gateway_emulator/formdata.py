"""Stripe's form encoding: `metadata[order]=x&payment_method_types[0]=card` → nested values."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class FormError(ValueError):
    pass


def pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise FormError("Invalid request body: not UTF-8") from None


def decode(items: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in items:
        match = _KEY.match(key)
        if not match:
            raise FormError(f"Invalid parameter name: {key}")
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for index, part in enumerate(path):
            last = index == len(path) - 1
            name = part if part != "" else str(len(node))  # `a[]=x` appends
            if last:
                node[name] = value
            else:
                child = node.setdefault(name, {})
                if not isinstance(child, dict):
                    raise FormError(f"Invalid parameter name: {key}")
                node = child
    result = _lists(root)
    if not isinstance(result, dict):
        raise FormError("Invalid request body: parameter names must not be numbers")
    return result


def _lists(value: Any) -> Any:
    """Dicts keyed 0..n-1 become lists, as Stripe reads `x[0]=a&x[1]=b`."""
    if not isinstance(value, dict):
        return value
    converted = {k: _lists(v) for k, v in value.items()}
    if converted and all(k.isdigit() for k in converted):
        keys = sorted(converted, key=int)
        if [int(k) for k in keys] == list(range(len(keys))):
            return [converted[k] for k in keys]
    return converted
