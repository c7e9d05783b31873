"""Settings from environment variables, with documented development defaults.

Every variable is listed in docs/CONFIGURATION.md. The defaults point at the servers `make run`
starts (devstack) and at the gateway emulator; production sets them all.
"""

from __future__ import annotations

import dataclasses
import logging
import os

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"

_log = logging.getLogger(__name__)


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"setting {name} must be an integer, got {raw!r}") from None


def _env_list(name: str, default: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in _env(name, default).split(",") if part.strip())


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


def load_settings() -> Settings:
    emulator_port = _env_int("GATEWAY_EMULATOR_PORT", 8090)
    emulator = f"http://127.0.0.1:{emulator_port}"
    return Settings(
        database_url=_env("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:55432/checkout"),
        db_pool_size=_env_int("DB_POOL_SIZE", 10),
        redis_url=_env("REDIS_URL", "redis://127.0.0.1:56379/0"),
        nats_url=_env("NATS_URL", "nats://127.0.0.1:54222"),
        jwt_secret=_env("JWT_SECRET", DEV_JWT_SECRET),
        jwt_issuer=_env("JWT_ISSUER", "interns-platform"),
        jwt_audience=_env("JWT_AUDIENCE", "checkout"),
        seller_state=_env("SELLER_STATE", "KA"),
        cart_ttl_seconds=_env_int("CART_TTL", 24 * 3600),
        pricing_ttl_seconds=_env_int("PRICING_TTL", 5 * 60),
        discount_ttl_seconds=_env_int("DISCOUNT_TTL", 3600),
        cart_grpc_port=_env_int("CART_GRPC_PORT", 50051),
        order_grpc_port=_env_int("ORDER_GRPC_PORT", 50052),
        payment_grpc_port=_env_int("PAYMENT_GRPC_PORT", 50053),
        enrollment_grpc_port=_env_int("ENROLLMENT_GRPC_PORT", 50054),
        cart_metrics_port=_env_int("CART_METRICS_PORT", 9101),
        order_metrics_port=_env_int("ORDER_METRICS_PORT", 9102),
        payment_metrics_port=_env_int("PAYMENT_METRICS_PORT", 9103),
        enrollment_metrics_port=_env_int("ENROLLMENT_METRICS_PORT", 9104),
        grpc_host=_env("GRPC_HOST", "127.0.0.1"),
        payment_grpc_address=_env("PAYMENT_GRPC_ADDRESS", f"127.0.0.1:{_env_int('PAYMENT_GRPC_PORT', 50053)}"),
        order_grpc_address=_env("ORDER_GRPC_ADDRESS", f"127.0.0.1:{_env_int('ORDER_GRPC_PORT', 50052)}"),
        edge_port=_env_int("EDGE_PORT", 8080),
        edge_admin_port=_env_int("EDGE_ADMIN_PORT", 9901),
        razorpay_key_id=_env("RAZORPAY_KEY_ID", "rzp_test_devkey"),
        razorpay_key_secret=_env("RAZORPAY_KEY_SECRET", "dev-key-secret"),
        razorpay_webhook_secrets=_env_list("RAZORPAY_WEBHOOK_SECRET", "dev-webhook-secret"),
        razorpay_base_url=_env("RAZORPAY_BASE_URL", emulator),
        stripe_api_key=_env("STRIPE_API_KEY", "sk_test_dev"),
        stripe_webhook_secrets=_env_list("STRIPE_WEBHOOK_SECRET", "dev-stripe-webhook-secret"),
        stripe_base_url=_env("STRIPE_BASE_URL", emulator),
        gateway_emulator_port=emulator_port,
        log_level=_env("LOG_LEVEL", "INFO"),
    )


def warn_if_insecure(settings: Settings) -> None:
    if settings.jwt_secret_is_dev_default:
        _log.warning(
            "JWT_SECRET is the development default: anyone can mint tokens. "
            "Set JWT_SECRET before this service faces real users."
        )
