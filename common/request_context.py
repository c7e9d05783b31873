"""Per-request facts (correlation id, caller) carried in contextvars through async calls."""

from __future__ import annotations

import contextvars
import dataclasses
import uuid

from common.errors import CheckoutError, ErrorCode


@dataclasses.dataclass(frozen=True)
class Caller:
    user_id: str = ""  # empty: anonymous (a guest)
    roles: tuple[str, ...] = ()

    @property
    def authenticated(self) -> bool:
        return bool(self.user_id)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


ANONYMOUS = Caller()

correlation_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")
caller_var: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller", default=ANONYMOUS)


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def correlation_id() -> str:
    return correlation_id_var.get()


def caller() -> Caller:
    return caller_var.get()


def require_user() -> Caller:
    current = caller_var.get()
    if not current.authenticated:
        raise CheckoutError(ErrorCode.NOT_AUTHENTICATED, "a bearer token is required")
    return current


def require_admin() -> Caller:
    current = require_user()
    if not current.is_admin:
        raise CheckoutError(ErrorCode.NOT_ALLOWED, "the admin role is required")
    return current
