"""payment_svc's background loops: the session-expiry sweeper (sweeper.py), the reconciler
(reconciler.py) and the relay of the `payment` outbox (relay.py). app.py starts them."""
