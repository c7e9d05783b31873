"""Crash tests' fault points: where a process SIGKILLs itself, so that nothing after the point (a
commit, a mark, an ack) happens and no cleanup runs.

It takes two settings: CHECKOUT_FAULT names the points, and CHECKOUT_TEST_HOOKS must be on too.
A process that sees CHECKOUT_FAULT without the switch says so once at start
(`warn_about_fault_settings`) and never kills itself: a stray variable in a real environment must
not be able to crash a payment.
"""

from __future__ import annotations

import functools
import logging
import os
import signal

from common.settings import Settings, load_settings, process_settings

FAULT_ENV = "CHECKOUT_FAULT"
TEST_HOOKS_ENV = "CHECKOUT_TEST_HOOKS"

_log = logging.getLogger(__name__)


def armed_faults(settings: Settings | None = None) -> frozenset[str]:
    """The fault points named by CHECKOUT_FAULT, or none unless CHECKOUT_TEST_HOOKS is on
    (default: read from the environment now)."""
    settings = settings or load_settings()
    if not settings.checkout_test_hooks:
        return frozenset()
    return frozenset(part.strip() for part in settings.checkout_fault.split(",") if part.strip())


@functools.cache
def _armed_in_this_process() -> frozenset[str]:
    return armed_faults(process_settings())


def fault_point(name: str) -> None:
    if name in _armed_in_this_process():
        _log.warning("fault injected: killing this process", extra={"fault": name})
        os.kill(os.getpid(), signal.SIGKILL)


def warn_about_fault_settings(settings: Settings | None = None) -> None:
    """Called once at every process start, after logging is configured."""
    settings = settings or load_settings()
    wanted = settings.checkout_fault.strip()
    if not wanted:
        return
    if armed_faults(settings):
        _log.warning("test hooks on: this process kills itself at the named fault points", extra={"fault": wanted})
    else:
        _log.warning(f"{FAULT_ENV} is set but {TEST_HOOKS_ENV} is not: the fault points are off and "
                     f"{FAULT_ENV} is ignored (it is for crash tests only)", extra={"fault": wanted})
