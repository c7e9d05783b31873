"""We never carry card data (PCI scope): no proto field, column or log call may hold a card
number or CVV. The gateway's hosted page takes the card; we only see its ids."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
CARD_WORDS = re.compile(r"\b\w*(card_?number|cardnum|pan\b|cvv|cvc|card_?code|expiry_?month|exp_?month|security_?code)\w*\b", re.IGNORECASE)


def _sources(folder: str, pattern: str) -> list[pathlib.Path]:
    return sorted((ROOT / folder).rglob(pattern))


def test_no_proto_field_for_card_data() -> None:
    for path in _sources("proto", "*.proto"):
        fields = re.findall(r"^\s*(?:repeated\s+)?[\w.]+\s+(\w+)\s*=\s*\d+", path.read_text(), re.MULTILINE)
        assert not [f for f in fields if CARD_WORDS.search(f)], path


def test_no_column_for_card_data() -> None:
    for path in _sources("migrations", "*.py"):
        assert not CARD_WORDS.search(path.read_text()), path


def test_the_checker_would_notice() -> None:
    assert CARD_WORDS.search("card_number text") and CARD_WORDS.search("string cvv = 3;")
    assert not CARD_WORDS.search("payment_method text") and not CARD_WORDS.search("expires_at")
