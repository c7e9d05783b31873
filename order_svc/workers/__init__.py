"""order_svc's background loops: event consumers, the placement recovery worker, the unpaid-order
sweeper (the outbox relay is common.outbox_relay's, wired in app.py)."""
