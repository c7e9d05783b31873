"""Crash tests' fault points: where a process SIGKILLs itself, so that nothing after the point (a
commit, a mark, an ack) happens and no cleanup runs.

It takes two settings: CHECKOUT_FAULT names the points, and CHECKOUT_TEST_HOOKS must be set too.
A process that sees CHECKOUT_FAULT without the switch warns once at start (`warn_if_misconfigured`)
and never kills itself: a stray variable in production must not be able to crash a payment.
"""

from __future__ import annotations

import functools
import logging
import os
import signal

from common.settings import process_settings

_log = logging.getLogger(__name__)


@functools.cache
def _armed_points() -> frozenset[str]:
    settings = process_settings()
    if not settings.checkout_test_hooks:
        return frozenset()
    return frozenset(part.strip() for part in settings.checkout_fault.split(",") if part.strip())


def fault_point(name: str) -> None:
    if name in _armed_points():
        _log.warning("fault injected: killing this process", extra={"fault": name})
        os.kill(os.getpid(), signal.SIGKILL)


def warn_if_misconfigured() -> None:
    settings = process_settings()
    if settings.checkout_fault and not settings.checkout_test_hooks:
        _log.warning("CHECKOUT_FAULT is set but CHECKOUT_TEST_HOOKS is not: fault points stay off",
                     extra={"fault": settings.checkout_fault})
