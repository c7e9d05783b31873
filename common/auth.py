"""Bearer JWTs as CONTRACT.md fixes them: HS256, iss interns-platform, aud checkout, sub a UUID."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

import jwt

from common.errors import CheckoutError, ErrorCode
from common.request_context import ANONYMOUS, Caller
from common.settings import Settings

_REQUIRED_CLAIMS = ["sub", "exp", "iss", "aud"]


_VERIFIED_CACHE_SIZE = 4096


class TokenVerifier:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._secret = settings.jwt_secret
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._clock = clock
        # A client sends the same token on every call of a checkout: its signature and claims are
        # checked once, then only its expiry (kept beside it) is checked again on each use.
        self._verified: OrderedDict[str, tuple[Caller, float]] = OrderedDict()

    def caller_from_header(self, authorization: str | None) -> Caller:
        """No header: anonymous. A header that is not a valid token: 401, never a silent guest."""
        if not authorization:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise CheckoutError(ErrorCode.NOT_AUTHENTICATED, "the Authorization header must be 'Bearer <token>'")
        remembered = self._verified.get(token)
        if remembered is not None:
            caller, expires = remembered
            if self._clock() >= expires:
                del self._verified[token]
                raise CheckoutError(ErrorCode.NOT_AUTHENTICATED, "the bearer token has expired")
            self._verified.move_to_end(token)
            return caller
        caller, expires = self._verify(token.strip())
        self._verified[token] = (caller, expires)
        if len(self._verified) > _VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return caller

    def _verify(self, token: str) -> tuple[Caller, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise CheckoutError(ErrorCode.NOT_AUTHENTICATED, "the bearer token has expired") from None
        except jwt.InvalidTokenError:
            # the library's text says which check failed (signature, audience…): a prober's oracle
            raise CheckoutError(ErrorCode.NOT_AUTHENTICATED, "the bearer token is invalid") from None
        return Caller(user_id=_user_id(claims.get("sub")), roles=_roles(claims.get("roles"))), float(claims["exp"])


def _user_id(sub: object) -> str:
    try:
        return str(uuid.UUID(str(sub)))
    except ValueError:
        raise CheckoutError(ErrorCode.NOT_AUTHENTICATED, "the token's sub must be a user id (UUID)") from None


def _roles(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(role, str) for role in raw):
        raise CheckoutError(ErrorCode.NOT_AUTHENTICATED, "the token's roles must be a list of strings")
    return tuple(raw)


def mint_token(settings: Settings, user_id: str, roles: list[str] | None = None, ttl_seconds: int = 3600) -> str:
    """For tests, the demo and the dev-only login form; production tokens come from the identity service."""
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": user_id,
        "iat": now,
        "exp": now + ttl_seconds,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    if roles:
        claims["roles"] = roles
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
