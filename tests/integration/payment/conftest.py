"""Fixtures of the payment tests: `engine` is payment_svc's own (role checkout_payment, schema
payment), the only database access payment_svc has and all these tests need; the emulator, the
in-process payment service (`stack`, and `hooks` with a webhook receiver) come from tests/support."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.payments import emulator, payment_settings, stack  # noqa: F401 - fixtures
from tests.support.webhooks import hooks  # noqa: F401 - fixtures


@pytest.fixture
def engine(payment_engine: AsyncEngine) -> AsyncEngine:
    return payment_engine
