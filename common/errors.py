"""The checkout error catalog and the domain exception every layer raises.

One table says, for each stable error code, which gRPC status carries it, which HTTP status a
REST client sees, whether retrying can help and what to suggest. Domain code raises these too,
so this module imports nothing but the standard library. The gRPC layer
(common/grpc_errors.py) and the edge (edge/ generates its Lua table from ERRORS) both read it, so
a code cannot mean one thing in a service and another at the edge.
"""

from __future__ import annotations

import dataclasses
import enum


@dataclasses.dataclass(frozen=True)
class ErrorSpec:
    code: int
    grpc_status: str  # a grpc.StatusCode name; kept as text so domain code never imports grpc
    http_status: int
    message: str
    retryable: bool = False
    suggested_action: str = ""


class ErrorCode(enum.Enum):
    VALIDATION_FAILED = ErrorSpec(1000, "INVALID_ARGUMENT", 400, "validation failed", False, "correct the listed fields and send the request again")
    CART_NOT_FOUND = ErrorSpec(1001, "NOT_FOUND", 404, "cart not found", False, "create a new cart")
    CART_EXPIRED = ErrorSpec(1002, "FAILED_PRECONDITION", 410, "cart expired", False, "create a new cart")
    CART_CONVERTED = ErrorSpec(1003, "FAILED_PRECONDITION", 409, "cart already converted to an order", False, "open the order made from this cart")
    CART_EMPTY = ErrorSpec(1004, "FAILED_PRECONDITION", 400, "cart empty", False, "add an item to the cart")
    ITEM_NOT_FOUND = ErrorSpec(1005, "NOT_FOUND", 404, "item, plan or internship not found", False, "choose an item from the catalog")
    ALREADY_EXISTS = ErrorSpec(1006, "ALREADY_EXISTS", 409, "already exists", False, "use another identifier")
    NOT_AUTHENTICATED = ErrorSpec(1101, "UNAUTHENTICATED", 401, "not authenticated", False, "log in and send a valid bearer token")
    NOT_ALLOWED = ErrorSpec(1102, "PERMISSION_DENIED", 403, "not allowed", False, "use your own cart or order")
    INVALID_COUPON = ErrorSpec(2004, "INVALID_ARGUMENT", 400, "invalid coupon", False, "check the code or remove the coupon")
    IDEMPOTENCY_KEY_REUSED = ErrorSpec(2005, "ALREADY_EXISTS", 409, "idempotency key reused with a different request", False, "send a new Idempotency-Key for a new request")
    IDEMPOTENCY_KEY_IN_FLIGHT = ErrorSpec(2006, "ABORTED", 409, "a request with this idempotency key is in progress", True, "wait a moment and retry with the same key")
    ORDER_NOT_FOUND = ErrorSpec(2101, "NOT_FOUND", 404, "order not found", False, "check the order token")
    ORDER_NOT_PAYABLE = ErrorSpec(2102, "FAILED_PRECONDITION", 409, "order not payable in its current state", False, "read the order for its current status")
    DOCUMENT_NOT_FOUND = ErrorSpec(2103, "NOT_FOUND", 404, "tax document not found", False, "a credit note exists once its refund is processed; list the order's refunds")
    PAYMENT_FAILED = ErrorSpec(3001, "FAILED_PRECONDITION", 402, "payment failed", False, "try again or use another payment method")
    INSUFFICIENT_BALANCE = ErrorSpec(3002, "FAILED_PRECONDITION", 402, "insufficient balance", False, "use another payment method")
    PAYMENT_SESSION_EXPIRED = ErrorSpec(3003, "FAILED_PRECONDITION", 410, "payment session expired", False, "start a new payment attempt for the order")
    PAYMENT_NOT_FOUND = ErrorSpec(3004, "NOT_FOUND", 404, "payment not found", False, "check the payment token")
    REFUND_EXCEEDS_REMAINING = ErrorSpec(3301, "FAILED_PRECONDITION", 409, "refund exceeds what is left to refund", False, "list the order's refunds and ask for at most what is left")
    NOTHING_TO_REFUND = ErrorSpec(3302, "FAILED_PRECONDITION", 409, "nothing to refund: the order is not paid", False, "only a paid order can be refunded")
    DEAD_LETTER_NOT_FOUND = ErrorSpec(3201, "NOT_FOUND", 404, "dead letter not found", False, "list the dead letters for their ids")
    WEBHOOK_SIGNATURE_INVALID = ErrorSpec(3101, "INVALID_ARGUMENT", 400, "webhook signature invalid", False, "")
    GATEWAY_UNAVAILABLE = ErrorSpec(4001, "UNAVAILABLE", 503, "service temporarily unavailable", True, "retry in a few seconds")
    ROUTE_NOT_FOUND = ErrorSpec(4004, "NOT_FOUND", 404, "no such route", False, "check the method and path against the API contract")
    BODY_TOO_LARGE = ErrorSpec(4013, "INVALID_ARGUMENT", 413, "request body too large", False, "send a smaller request body")
    RATE_LIMITED = ErrorSpec(429, "RESOURCE_EXHAUSTED", 429, "rate limit exceeded", True, "slow down and retry after a second")
    INTERNAL = ErrorSpec(5000, "INTERNAL", 500, "internal error", True, "retry; if it persists, contact support with the correlation id")
    NOT_IMPLEMENTED = ErrorSpec(5001, "UNIMPLEMENTED", 501, "not implemented yet", False, "this operation is planned but not available in this release")

    @property
    def spec(self) -> ErrorSpec:
        return self.value


class CheckoutError(Exception):
    """A failure a client is told about: a catalog code plus what exactly went wrong."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        validation_messages: list[str] | None = None,
        suggested_action: str | None = None,
    ) -> None:
        self.code = code
        self.message = message or code.spec.message
        self.validation_messages = list(validation_messages or [])
        self.suggested_action = code.spec.suggested_action if suggested_action is None else suggested_action
        super().__init__(f"{code.spec.code} {self.message}")

    @property
    def retryable(self) -> bool:
        return self.code.spec.retryable


class ValidationFailed(CheckoutError):
    """Every bad field of a request at once, so a client can fix them in one go."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(ErrorCode.VALIDATION_FAILED, validation_messages=problems)


def by_number() -> dict[int, ErrorSpec]:
    return {member.spec.code: member.spec for member in ErrorCode}


def code_for(number: int) -> ErrorCode:
    """The catalog entry of a code received from another service (INTERNAL if unknown)."""
    for member in ErrorCode:
        if member.spec.code == number:
            return member
    return ErrorCode.INTERNAL
