"""What an idempotency key keeps of a finished request, so that a replay answers exactly what
the first request answered: the order view, or the error, as JSON (code 0 = an order)."""

from __future__ import annotations

import json

from common.errors import CheckoutError, code_for
from order_svc.views import OrderView

SUCCESS = 0


def order_body(view: OrderView) -> tuple[int, bytes]:
    return SUCCESS, json.dumps(view.as_json(), sort_keys=True, separators=(",", ":")).encode()


def error_body(error: CheckoutError) -> tuple[int, bytes]:
    return error.code.spec.code, json.dumps({
        "code": error.code.spec.code, "message": error.message, "validation_messages": error.validation_messages,
        "suggested_action": error.suggested_action}, separators=(",", ":")).encode()


def replay(response_code: int, body: bytes) -> OrderView:
    """The stored order, or the stored error raised again."""
    stored = json.loads(body)
    if response_code == SUCCESS:
        return OrderView.from_json(stored)
    raise CheckoutError(code_for(stored["code"]), stored["message"], validation_messages=stored["validation_messages"],
                        suggested_action=stored["suggested_action"])
