"""The per-gateway circuit breaker, driven by a hand-moved clock."""

from __future__ import annotations

import pytest

from payment_svc.domain.circuit_breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, failures: int = 3, cooldown: float = 10.0, trials: int = 1) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=failures, cooldown_s=cooldown, half_open_calls=trials, clock=clock)


def test_opens_after_threshold_consecutive_failures() -> None:
    b = breaker(Clock())
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state is BreakerState.CLOSED and b.consecutive_failures == 2
    assert b.allow()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert not b.allow()


def test_a_success_resets_the_count() -> None:
    b = breaker(Clock())
    b.record_failure()
    b.record_failure()
    b.record_success()
    b.record_failure()
    b.record_failure()
    assert b.state is BreakerState.CLOSED


def test_half_open_after_cooldown_lets_one_trial_through() -> None:
    clock = Clock()
    b = breaker(clock, failures=1, cooldown=10.0)
    b.record_failure()
    clock.now += 9.9
    assert b.state is BreakerState.OPEN and not b.allow()
    assert b.seconds_until_trial() == pytest.approx(0.1)
    clock.now += 0.1
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()
    assert not b.allow()  # only one trial in flight


def test_trial_success_closes() -> None:
    clock = Clock()
    b = breaker(clock, failures=1, cooldown=5.0)
    b.record_failure()
    clock.now += 5
    assert b.allow()
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert all(b.allow() for _ in range(5))


def test_trial_failure_reopens_for_a_new_cooldown() -> None:
    clock = Clock()
    b = breaker(clock, failures=1, cooldown=5.0)
    b.record_failure()
    clock.now += 5
    assert b.allow()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    clock.now += 4.9
    assert not b.allow()
    clock.now += 0.1
    assert b.allow()


def test_abandoned_trial_frees_its_slot() -> None:
    clock = Clock()
    b = breaker(clock, failures=1, cooldown=1.0)
    b.record_failure()
    clock.now += 1
    assert b.allow()
    b.record_abandoned()
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()


def test_several_trials_when_configured() -> None:
    clock = Clock()
    b = breaker(clock, failures=1, cooldown=1.0, trials=2)
    b.record_failure()
    clock.now += 1
    assert b.allow() and b.allow() and not b.allow()


def test_failures_reported_while_open_do_not_extend_it() -> None:
    clock = Clock()
    b = breaker(clock, failures=1, cooldown=10.0)
    b.record_failure()
    clock.now += 9
    b.record_failure()  # a slow call that started before the breaker opened
    clock.now += 1
    assert b.state is BreakerState.HALF_OPEN


@pytest.mark.parametrize("kwargs", [{"failure_threshold": 0}, {"cooldown_s": -1}, {"half_open_calls": 0}])
def test_rejects_nonsense_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]
