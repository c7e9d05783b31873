"""The crash-test hook: CHECKOUT_FAULT kills a process only when CHECKOUT_TEST_HOOKS is also on;
without the switch it is ignored, and a process start says so in a warning."""

from __future__ import annotations

import logging
import pathlib
import signal
import subprocess
import sys

import pytest

from common.faults import FAULT_ENV, TEST_HOOKS_ENV, armed_faults, warn_about_fault_settings
from tests.support.processes import inherited_env

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("fault", "switch", "armed"), [
    (None, None, set()),
    ("consumer_after_commit", None, set()),
    ("consumer_after_commit", "", set()),
    ("consumer_after_commit", "0", set()),
    ("consumer_after_commit", "no", set()),
    ("consumer_after_commit", "1", {"consumer_after_commit"}),
    ("consumer_after_commit", "true", {"consumer_after_commit"}),
    (" relay_after_publish , order_after_commit ,", "1", {"relay_after_publish", "order_after_commit"}),
    (None, "1", set()),
])
def test_faults_are_armed_only_with_the_test_switch(monkeypatch, fault, switch, armed):
    for name, value in ((FAULT_ENV, fault), (TEST_HOOKS_ENV, switch)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert armed_faults() == armed


def _run_fault_point(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "from common.faults import fault_point; fault_point('consumer_after_commit'); print('alive')"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=inherited_env() | extra_env,
                          capture_output=True, text=True, timeout=60)


def test_fault_point_kills_the_process_when_armed():
    run = _run_fault_point({FAULT_ENV: "consumer_after_commit", TEST_HOOKS_ENV: "1"})
    assert run.returncode == -signal.SIGKILL and "alive" not in run.stdout


def test_fault_point_without_the_switch_does_nothing():
    run = _run_fault_point({FAULT_ENV: "consumer_after_commit"})
    assert run.returncode == 0 and run.stdout == "alive\n", run.stderr


def test_a_start_with_a_fault_but_no_switch_warns_that_it_is_ignored(monkeypatch, caplog):
    monkeypatch.setenv(FAULT_ENV, "consumer_after_commit")
    monkeypatch.delenv(TEST_HOOKS_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger="common.faults"):
        warn_about_fault_settings()
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "CHECKOUT_FAULT is set but CHECKOUT_TEST_HOOKS is not" in record.getMessage()
    assert "ignored" in record.getMessage() and record.fault == "consumer_after_commit"


def test_a_start_with_armed_faults_warns_that_it_will_kill_itself(monkeypatch, caplog):
    monkeypatch.setenv(FAULT_ENV, "relay_after_publish")
    monkeypatch.setenv(TEST_HOOKS_ENV, "1")
    with caplog.at_level(logging.WARNING, logger="common.faults"):
        warn_about_fault_settings()
    [record] = caplog.records
    assert "kills itself at the named fault points" in record.getMessage() and record.fault == "relay_after_publish"


def test_a_start_without_a_fault_says_nothing(monkeypatch, caplog):
    monkeypatch.delenv(FAULT_ENV, raising=False)
    monkeypatch.setenv(TEST_HOOKS_ENV, "1")
    with caplog.at_level(logging.DEBUG, logger="common.faults"):
        warn_about_fault_settings()
    assert caplog.records == []
