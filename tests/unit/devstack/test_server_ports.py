"""`python -m devstack run --server-ports PG,REDIS,NATS`: a second stack's embedded servers."""

import argparse

import pytest

from devstack.__main__ import _ports
from devstack.servers import ServerPorts


def test_three_ports_in_order():
    assert _ports("18532,18579,18522") == ServerPorts(postgres=18532, redis=18579, nats=18522)


@pytest.mark.parametrize("text", ["18532,18579", "a,b,c", "1,2,3,4"])
def test_anything_else_is_refused(text):
    with pytest.raises((ValueError, argparse.ArgumentTypeError)):
        _ports(text)
