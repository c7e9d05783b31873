"""Bearer metadata for test callers."""

from __future__ import annotations

import uuid

from common.auth import mint_token
from common.settings import Settings


def new_user() -> str:
    return str(uuid.uuid4())


def bearer(settings: Settings, user_id: str, roles: list[str] | None = None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {mint_token(settings, user_id, roles)}"),)
