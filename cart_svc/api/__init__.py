"""cart_svc's gRPC servicers: protobuf ⇄ commands and views, nothing else (messages.py converts)."""
