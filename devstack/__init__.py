"""Local PostgreSQL, Redis and NATS from Python wheels, and the supervisor behind `make run`.

`python -m devstack --help` for the commands; `devstack.servers.ensure_servers` for tests.
"""
