"""Who may touch a cart (OWASP API1): decided on the cart as stored, never on the URL.

A guest cart: whoever holds its token. A user's cart: only that user; no token → 401, another
user's token → 403.
"""

from __future__ import annotations

from cart_svc.domain.cart import Cart
from common.errors import CheckoutError, ErrorCode
from common.request_context import Caller


def ensure_may_touch(cart: Cart, caller: Caller) -> None:
    ensure_may_touch_owner(cart.user_id, caller)


def ensure_may_touch_owner(cart_user_id: str | None, caller: Caller) -> None:
    if cart_user_id is None:
        return
    if not caller.authenticated:
        raise CheckoutError(ErrorCode.NOT_AUTHENTICATED, "this cart belongs to a user: send their bearer token")
    if caller.user_id != cart_user_id:
        raise CheckoutError(ErrorCode.NOT_ALLOWED, "this cart belongs to another user")
