"""The placement of an order (the saga's log, one row per order token chosen at step 1), decided
without I/O.

    converting ──► placed        the order row exists (step 3)
        │   ├────► superseded    ConvertCart answered another order's token (a double submit)
        │   └────► refused       ConvertCart refused the cart: nothing was taken
        └────────► abandoned ──► released   nobody finished it: the recovery worker gave the
                                             cart and its coupon back (ReleaseCart)
"""

from __future__ import annotations

from typing import Final, Literal

PlacementState = Literal["converting", "placed", "abandoned", "released", "superseded", "refused"]
Step3 = Literal["insert", "exists", "refuse"]

# A placement in one of these is given up: its order will never be made from it.
GIVEN_UP: Final = frozenset({"abandoned", "released"})


def step3_for(answer_state: str | None, order_exists: bool) -> Step3:
    """What step 3 does for the order ConvertCart answered, by that order's placement state.

    abandoned / released: the recovery worker owns it now (its cart is being given back): refuse
    (4001, retryable: the retry starts afresh). Otherwise the conversion is real (cart_svc holds
    it): the order is inserted once, from the snapshot.
    """
    if answer_state in GIVEN_UP:
        return "refuse"
    return "exists" if order_exists else "insert"


def resumes_at(own_state: str, resolved_state: str | None) -> Literal["convert", "order", "afresh"]:
    """Where a retry with the same Idempotency-Key resumes from the key's placement.

    converting: ConvertCart again (idempotent on the token). placed: the order exists.
    superseded: the order it resolved to, if that one was placed. Anything given up or refused:
    a new placement.
    """
    if own_state == "converting":
        return "convert"
    if own_state == "placed":
        return "order"
    if own_state == "superseded" and resolved_state == "placed":
        return "order"
    return "afresh"
