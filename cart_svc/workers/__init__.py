"""cart_svc's background loops: the cart sweeper, the cart-orders consumer and the outbox relay."""
