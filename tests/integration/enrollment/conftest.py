"""Fixtures of the enrollment_svc integration tests."""

from __future__ import annotations

import pytest

from tests.support.event_bus import drop_streams, namespaced


@pytest.fixture
async def ns(settings):
    """The session's settings with a JetStream namespace of this test alone (dropped afterwards)."""
    chosen = namespaced(settings)
    yield chosen
    await drop_streams(chosen)
