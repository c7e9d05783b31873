"""A small, deterministic YAML writer for the Envoy bootstrap (no PyYAML in the lock).

Only what the bootstrap needs: dicts, lists, str, int, float, bool, None. Every string scalar is
written double-quoted with JSON escapes (a valid YAML double-quoted scalar, so "on", "1.0" or
"*" never change type), except multi-line strings (the Lua source), which become literal blocks.
Keys are written bare only when they are plain identifiers. Output is stable: dict order is kept.
"""

from __future__ import annotations

import json
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_INDENT = "  "


def dump(value: Any) -> str:
    lines: list[str] = []
    _emit(value, 0, lines)
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    if _BARE_KEY.match(key) and key.lower() not in ("true", "false", "null", "yes", "no", "on", "off", "y", "n"):
        return key
    return json.dumps(key)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _is_block_string(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value


def _block(value: str, level: int) -> list[str]:
    """A literal block ("|"): the text, normalised to end with exactly one newline."""
    text = value.rstrip("\n")
    if text[:1] in (" ", "\t") or "\r" in text or "\t" in text:
        raise ValueError("block strings must not start with whitespace or contain tabs / CR")
    pad = _INDENT * level
    return ["|", *(f"{pad}{line}".rstrip() if line.strip() else "" for line in text.split("\n"))]


def _emit(value: Any, level: int, lines: list[str]) -> None:
    pad = _INDENT * level
    if isinstance(value, dict):
        if not value:
            lines.append(pad + "{}")
            return
        for key, item in value.items():
            _emit_item(f"{pad}{_key(str(key))}:", item, level, lines)
    elif isinstance(value, list):
        if not value:
            lines.append(pad + "[]")
            return
        for item in value:
            _emit_list_item(item, level, lines)
    else:
        lines.append(pad + _scalar(value))


def _emit_item(prefix: str, item: Any, level: int, lines: list[str]) -> None:
    if isinstance(item, dict) and item:
        lines.append(prefix)
        _emit(item, level + 1, lines)
    elif isinstance(item, list) and item:
        lines.append(prefix)
        _emit(item, level + 1, lines)
    elif isinstance(item, (dict, list)):
        lines.append(f"{prefix} {'{}' if isinstance(item, dict) else '[]'}")
    elif _is_block_string(item):
        block = _block(item, level + 1)
        lines.append(f"{prefix} {block[0]}")
        lines.extend(block[1:])
    else:
        lines.append(f"{prefix} {_scalar(item)}")


def _emit_list_item(item: Any, level: int, lines: list[str]) -> None:
    pad = _INDENT * level
    if isinstance(item, dict) and item:
        # "- first: x" then the other keys aligned under it
        sub: list[str] = []
        _emit(item, level + 1, sub)
        first = sub[0][len(_INDENT) * (level + 1):]
        lines.append(f"{pad}- {first}")
        lines.extend(sub[1:])
    elif isinstance(item, list) and item:
        sub = []
        _emit(item, level + 1, sub)
        lines.append(f"{pad}-")
        lines.extend(sub)
    elif _is_block_string(item):
        block = _block(item, level + 1)
        lines.append(f"{pad}- {block[0]}")
        lines.extend(block[1:])
    else:
        lines.append(f"{pad}- {_scalar(item) if not isinstance(item, (dict, list)) else ('{}' if isinstance(item, dict) else '[]')}")
