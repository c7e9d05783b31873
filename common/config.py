"""Settings from environment variables, with documented development defaults.

Every variable is listed in docs/CONFIGURATION.md. The defaults point at the servers `make run`
starts (devstack) and at the gateway emulator; production sets them all.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"

_log = logging.getLogger(__name__)


def _env(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    return (os.environ if env is None else env).get(name, default)


def env_int(name: str, default: int, env: Mapping[str, str] | None = None, *, minimum: int | None = None) -> int:
    """An integer setting, written as one ("10", not "10.0"); anything else stops the process."""
    raw = (os.environ if env is None else env).get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"setting {name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SystemExit(f"setting {name} must be >= {minimum}, got {value}")
    return value


def env_number(name: str, default: float, *, minimum: float | None = None, above: float | None = None,
               env: Mapping[str, str] | None = None) -> float:
    """A numeric setting; a value that is not a number, or out of range, stops the process with a
    message naming the variable (a service must not start on a setting it misread)."""
    raw = (os.environ if env is None else env).get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"setting {name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SystemExit(f"setting {name} must be at least {minimum:g}, got {raw!r}")
    if above is not None and value <= above:
        raise SystemExit(f"setting {name} must be more than {above:g}, got {raw!r}")
    return value


def env_whole(name: str, default: int, *, minimum: int | None = None, env: Mapping[str, str] | None = None) -> int:
    value = env_number(name, default, minimum=minimum, env=env)
    if value != int(value):
        raise SystemExit(f"setting {name} must be a whole number, got {value!r}")
    return int(value)


def _env_list(name: str, default: str, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    return tuple(part.strip() for part in _env(name, default, env).split(",") if part.strip())


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str
    db_pool_size: int
    redis_url: str
    nats_url: str
    jwt_secret: str
    jwt_issuer: str
    jwt_audience: str
    seller_state: str
    cart_ttl_seconds: int
    pricing_ttl_seconds: int
    discount_ttl_seconds: int
    cart_grpc_port: int
    order_grpc_port: int
    payment_grpc_port: int
    enrollment_grpc_port: int
    cart_metrics_port: int
    order_metrics_port: int
    payment_metrics_port: int
    enrollment_metrics_port: int
    grpc_host: str
    payment_grpc_address: str  # where order_svc reaches payment_svc's internal PaymentSessions
    order_grpc_address: str
    edge_port: int
    edge_admin_port: int
    razorpay_key_id: str
    razorpay_key_secret: str
    razorpay_webhook_secrets: tuple[str, ...]
    razorpay_base_url: str
    stripe_api_key: str
    stripe_webhook_secrets: tuple[str, ...]
    stripe_base_url: str
    gateway_emulator_port: int
    log_level: str

    @property
    def jwt_secret_is_dev_default(self) -> bool:
        return self.jwt_secret == DEV_JWT_SECRET


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """From `env` (default: the process environment)."""
    emulator_port = env_int("GATEWAY_EMULATOR_PORT", 8090, env)
    emulator = f"http://127.0.0.1:{emulator_port}"
    return Settings(
        database_url=_env("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:55432/checkout", env),
        db_pool_size=env_int("DB_POOL_SIZE", 10, env),
        redis_url=_env("REDIS_URL", "redis://127.0.0.1:56379/0", env),
        nats_url=_env("NATS_URL", "nats://127.0.0.1:54222", env),
        jwt_secret=_env("JWT_SECRET", DEV_JWT_SECRET, env),
        jwt_issuer=_env("JWT_ISSUER", "interns-platform", env),
        jwt_audience=_env("JWT_AUDIENCE", "checkout", env),
        seller_state=_env("SELLER_STATE", "KA", env),
        cart_ttl_seconds=env_int("CART_TTL", 24 * 3600, env),
        pricing_ttl_seconds=env_int("PRICING_TTL", 5 * 60, env),
        discount_ttl_seconds=env_int("DISCOUNT_TTL", 3600, env),
        cart_grpc_port=env_int("CART_GRPC_PORT", 50051, env),
        order_grpc_port=env_int("ORDER_GRPC_PORT", 50052, env),
        payment_grpc_port=env_int("PAYMENT_GRPC_PORT", 50053, env),
        enrollment_grpc_port=env_int("ENROLLMENT_GRPC_PORT", 50054, env),
        cart_metrics_port=env_int("CART_METRICS_PORT", 9101, env),
        order_metrics_port=env_int("ORDER_METRICS_PORT", 9102, env),
        payment_metrics_port=env_int("PAYMENT_METRICS_PORT", 9103, env),
        enrollment_metrics_port=env_int("ENROLLMENT_METRICS_PORT", 9104, env),
        grpc_host=_env("GRPC_HOST", "127.0.0.1", env),
        payment_grpc_address=_env("PAYMENT_GRPC_ADDRESS", f"127.0.0.1:{env_int('PAYMENT_GRPC_PORT', 50053, env)}", env),
        order_grpc_address=_env("ORDER_GRPC_ADDRESS", f"127.0.0.1:{env_int('ORDER_GRPC_PORT', 50052, env)}", env),
        edge_port=env_int("EDGE_PORT", 8080, env),
        edge_admin_port=env_int("EDGE_ADMIN_PORT", 9901, env),
        razorpay_key_id=_env("RAZORPAY_KEY_ID", "rzp_test_devkey", env),
        razorpay_key_secret=_env("RAZORPAY_KEY_SECRET", "dev-key-secret", env),
        razorpay_webhook_secrets=_env_list("RAZORPAY_WEBHOOK_SECRET", "dev-webhook-secret", env),
        razorpay_base_url=_env("RAZORPAY_BASE_URL", emulator, env),
        stripe_api_key=_env("STRIPE_API_KEY", "sk_test_dev", env),
        stripe_webhook_secrets=_env_list("STRIPE_WEBHOOK_SECRET", "dev-stripe-webhook-secret", env),
        stripe_base_url=_env("STRIPE_BASE_URL", emulator, env),
        gateway_emulator_port=emulator_port,
        log_level=_env("LOG_LEVEL", "INFO", env),
    )


def warn_if_insecure(settings: Settings) -> None:
    if settings.jwt_secret_is_dev_default:
        _log.warning(
            "JWT_SECRET is the development default: anyone can mint tokens. "
            "Set JWT_SECRET before this service faces real users."
        )
