"""Every setting of every process, in one typed model read from the environment once per process.

Each field is an environment variable of the same name in capitals (`cart_ttl` ← `CART_TTL`).
The defaults point at what `make run` starts (embedded servers, the gateway emulator); production
sets every secret. docs/CONFIGURATION.md is generated from this model (`make docs`), grouped by
each field's `group`; a test fails when it is stale. A value that does not parse or is out of
range stops the process with a message naming the variable: a service must not start on a
setting it misread.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"
MIN_JWT_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
RAZORPAY_API_HOST = "api.razorpay.com"
RAZORPAY_CHECKOUT_JS = "https://checkout.razorpay.com/v1/checkout.js"
SERVICES = ("cart", "order", "payment", "enrollment")
# Each service's PostgreSQL role and schema (docs/ARCHITECTURE.md).
ROLES = {"cart": "checkout_cart", "order": "checkout_order", "payment": "checkout_payment",
         "enrollment": "checkout_enrollment"}
_ROOT = pathlib.Path(__file__).resolve().parent.parent  # this checkout
SCHEMAS = {"cart": "cart", "order": "ordering", "payment": "payment", "enrollment": "enrollment"}

Csv = Annotated[tuple[str, ...], NoDecode]
Seconds = Annotated[float, Field(ge=0)]


def _field(default: Any, group: str, what: str, **more: Any) -> Any:
    return Field(default, description=what, json_schema_extra={"group": group}, **more)


class Settings(BaseSettings):
    # the fields _derived filled in (left unset): replace() derives them again
    _derived_fields: frozenset[str] = PrivateAttr(default=frozenset())
    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False, env_prefix="",
                                      env_ignore_empty=True)

    environment: Literal["development", "production"] = _field(
        "development", "servers", "`production` refuses to start on development secrets: the dev JWT_SECRET or "
        "one shorter than 32 bytes, localhost (or default) CORS or return-URL origins, GRPC_PLAINTEXT; and turns "
        "EDGE_REQUIRE_TLS on")

    # -- servers -----------------------------------------------------------------------------------
    database_url: str = _field(
        "postgresql+psycopg://postgres@127.0.0.1:55432/checkout", "servers",
        "PostgreSQL as its administrator (SQLAlchemy URL, psycopg 3): `python -m common.migrations bootstrap` creates each service's "
        "role and schema with it; each service's own URL defaults to this one with the service's role as user. "
        "Set it and `make run` starts no PostgreSQL of its own.")
    cart_database_url: str = _field("", "servers", "cart_svc's database (role `checkout_cart`, schema `cart`); "
                                    "default: DATABASE_URL as that role, without a password. A password in "
                                    "a service's URL is given to its role by the bootstrap")
    order_database_url: str = _field("", "servers", "order_svc's (role `checkout_order`, schema `ordering`)")
    payment_database_url: str = _field("", "servers", "payment_svc's (role `checkout_payment`, schema `payment`)")
    enrollment_database_url: str = _field("", "servers", "enrollment_svc's (role `checkout_enrollment`, schema "
                                          "`enrollment`)")
    read_database_url: str = _field("", "servers", "a streaming replica of DATABASE_URL (administrator URL, as "
                                    "DATABASE_URL): cart_svc reads the catalog and sales there, which tolerate its "
                                    "lag; everything else, and every read of what a user just wrote, goes to the "
                                    "primary (default: none, all on the primary)")
    cart_read_database_url: str = _field("", "servers", "cart_svc's catalog reads (default: READ_DATABASE_URL as "
                                         "role `checkout_cart`, else CART_DATABASE_URL)")
    db_pool_size: int = _field(10, "servers", "connections per service process (plus as many overflow)", ge=1)
    redis_url: str = _field("redis://127.0.0.1:56379/0", "servers",
                            "cache of carts and estimates; the services work without it")
    nats_url: str = _field("nats://127.0.0.1:54222", "servers", "NATS with JetStream: the services' events")
    log_level: str = _field("INFO", "servers", "JSON logs on stderr, one object per line, with the correlation id")

    service_role: Literal["all", "api", "workers"] = _field(
        "all", "servers", "what this service process runs besides its gRPC server: `all` its workers; `api` only "
        "the workers that keep its own caches; `workers` its relays, consumers and sweepers (and, for payment_svc, "
        "the gateways' webhooks, which the edge sends there under SPLIT_WORKERS, in docker-compose and in deploy/k8s): "
        "events then never queue behind the students' requests in one event loop")
    split_workers: bool = _field(False, "servers", "`make run` starts each service process twice: SERVICE_ROLE=api "
                                 "on its ports, and SERVICE_ROLE=workers (`<service>.workers`) on its ports + "
                                 "(SERVICE_REPLICAS + i) × REPLICA_PORT_STEP; the edge sends the gateways' webhooks "
                                 "to payment_svc's workers processes")
    db_statement_timeout_ms: int = _field(15000, "servers", "PostgreSQL `statement_timeout` of every service "
                                          "connection: a statement running longer is cancelled (`0`: none)", ge=0)

    # -- retention (one leader per service prunes; docs/OPERATIONS.md) -------------------------------
    retention_interval: Seconds = _field(3600.0, "retention", "seconds between pruning passes (`0`: never prune)")
    retention_outbox_days: float = _field(7.0, "retention", "published outbox rows older than this are deleted",
                                          gt=0)
    retention_dead_letter_days: float = _field(30.0, "retention", "replayed dead letters older than this are "
                                               "deleted (parked ones are kept until handled)", gt=0)
    retention_webhook_body_days: float = _field(30.0, "retention", "processed webhook events older than this "
                                                "keep their row and lose their raw body", gt=0)

    # -- tracing (common/tracing.py; docs/ARCHITECTURE.md "Tracing") ---------------------------------
    tracing: bool = _field(True, "tracing", "spans of every request, unit of work, Redis call, internal and gateway "
                           "call and event, one trace per checkout; `0`: none are recorded (the context still travels)")
    tracing_sample_ratio: float = _field(1.0, "tracing", "share of new traces recorded, at the edge and in "
                                         "every service (a continued trace follows its parent's decision)",
                                         ge=0, le=1)
    otel_exporter_otlp_endpoint: str = _field("", "tracing", "an OTLP/HTTP collector's base URL (Jaeger, an "
                                              "OpenTelemetry collector: `http://jaeger:4318`): every process and "
                                              "the edge export their spans there, and nothing is kept locally")
    tracing_dir: str = _field("", "tracing", "without OTEL_EXPORTER_OTLP_ENDPOINT: the local trace store, one "
                              "`<process>.jsonl` per process (`make traces` reads it); default `.run/traces` of "
                              "this checkout")
    tracing_file_bytes: int = _field(4 * 1024 * 1024, "tracing", "a process's trace file past this size is "
                                     "rotated (one older file kept)", ge=4096)
    trace_receiver_port: int = _field(54318, "tracing", "without OTEL_EXPORTER_OTLP_ENDPOINT: the local OTLP/HTTP "
                                      "receiver `make run` starts for the edge's spans (it writes `edge.jsonl`)")

    # -- identity and business rules -------------------------------------------------------------
    jwt_secret: str = _field(DEV_JWT_SECRET, "auth", "HS256 secret of bearer tokens; the default logs a warning "
                             "at every start")
    jwt_issuer: str = _field("interns-platform", "auth", "required `iss` claim")
    jwt_audience: str = _field("checkout", "auth", "required `aud` claim")
    seller_state: str = _field("KA", "rules", "the seller's GST state: CGST+SGST for buyers in it, IGST elsewhere "
                               "in India")
    cart_ttl: int = _field(24 * 3600, "rules", "seconds a cart lives after its last change", ge=1)
    cart_abandoned_after: int = _field(24 * 3600, "rules", "seconds a cart with items may sit unchanged before "
                                       "`checkout.cart.abandoned` is published for it (once)", ge=1)
    pricing_ttl: int = _field(5 * 60, "rules", "seconds an estimate is cached and quoted as valid", ge=1)
    discount_ttl: int = _field(3600, "rules", "seconds a discounts listing is cached", ge=1)
    catalog_cache_ttl: float = _field(60.0, "cart", "seconds a cart_svc process keeps a catalog answer at most "
                                      "(an admin change drops it at once: checkout.catalog.changed; `0`: no cache)",
                                      ge=0)
    catalog_max_age: int = _field(60, "cart", "`Cache-Control: public, max-age` of the catalog and sale answers",
                                  ge=0, le=300)
    coupon_attempts_per_cart: int = _field(10, "rules", "refused coupon codes a cart may try per "
                                           "COUPON_ATTEMPT_WINDOW; then 429 until the window ends", ge=1)
    coupon_attempt_window: int = _field(3600, "rules", "seconds of the coupon attempts window", ge=1)
    order_ttl: int = _field(2 * 3600, "rules", "seconds an unpaid order lives; then it expires and its coupon "
                            "hold is released", ge=60)

    # -- GST tax invoices (order_svc) ---------------------------------------------------------------
    seller_name: str = _field("Interns Platform Private Limited", "invoice", "the seller's legal name on tax "
                              "invoices and credit notes")
    seller_address: str = _field("100 MG Road, Bengaluru, Karnataka 560001, India", "invoice",
                                 "the seller's address on tax documents")
    seller_gstin: str = _field("29AAGCR4375J1ZU", "invoice", "the seller's GSTIN (its state code should be "
                               "SELLER_STATE's); the default is a sample")
    invoice_sac: str = _field("999293", "invoice", "SAC code of what is sold (999293: commercial training and "
                              "coaching services)")

    # -- ports and addresses -----------------------------------------------------------------------
    grpc_host: str = _field("127.0.0.1", "ports", "interface the services bind (`0.0.0.0` in containers)")
    cart_grpc_port: int = _field(50051, "ports", "cart_svc's gRPC port (reflection and grpc.health.v1 on each)")
    order_grpc_port: int = _field(50052, "ports", "order_svc's gRPC port")
    payment_grpc_port: int = _field(50053, "ports", "payment_svc's gRPC port")
    enrollment_grpc_port: int = _field(50054, "ports", "enrollment_svc's gRPC port")
    cart_metrics_port: int = _field(9101, "ports", "cart_svc's Prometheus `/metrics` (`0`: off)")
    order_metrics_port: int = _field(9102, "ports", "order_svc's Prometheus `/metrics`")
    payment_metrics_port: int = _field(9103, "ports", "payment_svc's Prometheus `/metrics`")
    enrollment_metrics_port: int = _field(9104, "ports", "enrollment_svc's Prometheus `/metrics`")
    cart_grpc_address: str = _field("", "ports", "where order_svc reaches cart_svc's internal CartCheckout "
                                    "(default 127.0.0.1:$CART_GRPC_PORT, every replica's address when "
                                    "SERVICE_REPLICAS > 1: `ipv4:127.0.0.1:P0,127.0.0.1:P1`, round robin)")
    payment_grpc_address: str = _field("", "ports", "where order_svc reaches payment_svc's internal "
                                       "PaymentSessions (default as CART_GRPC_ADDRESS)")
    service_replicas: int = _field(1, "ports", "processes of each service on this machine (`make run-ha`: 2); the "
                                   "edge and order_svc balance over them", ge=1, le=9)
    replica_port_step: int = _field(100, "ports", "replica i (from 0) of a service listens on its gRPC and metrics "
                                    "ports + i × this", ge=1)

    # -- gateways ----------------------------------------------------------------------------------
    razorpay_key_id: str = _field("rzp_test_devkey", "gateways", "Razorpay key id (public)")
    razorpay_key_secret: str = _field("dev-key-secret", "gateways", "Razorpay key secret (also signs the "
                                      "browser callback)")
    razorpay_webhook_secret: Csv = _field(("dev-webhook-secret",), "gateways",
                                          "comma-separated: every secret in it is accepted (rotation)")
    razorpay_base_url: str = _field("", "gateways", "`https://api.razorpay.com` in production (default: the "
                                    "gateway emulator)")
    razorpay_checkout_js_url: str = _field("", "gateways", "the script the checkout page loads for Razorpay "
                                           "Standard Checkout: `https://checkout.razorpay.com/v1/checkout.js` "
                                           "in production, Razorpay's own when RAZORPAY_BASE_URL is Razorpay's "
                                           "(default: the emulator's, `$RAZORPAY_BASE_URL/v1/checkout.js`); "
                                           "its origin joins the page's CSP")
    stripe_api_key: str = _field("sk_test_dev", "gateways", "Stripe secret key")
    stripe_webhook_secret: Csv = _field(("dev-stripe-webhook-secret",), "gateways", "comma-separated, as above")
    stripe_webhook_tolerance: Seconds = _field(300.0, "gateways", "accepted age (either way) of a "
                                               "Stripe-Signature timestamp")
    stripe_base_url: str = _field("", "gateways", "`https://api.stripe.com` in production (default: the emulator)")
    stripe_publishable_key: str = _field("pk_test_devkey", "gateways", "Stripe publishable key (public): the "
                                         "order's `payment.key_id` for a Stripe session")
    razorpay_checkout_url: str = _field("{base_url}/checkout/{gateway_order_id}", "gateways",
                                        "where the browser pays a Razorpay order (fields {base_url}, "
                                        "{gateway_order_id}, {key_id}, {payment_token}); a Stripe session's is "
                                        "its Checkout Session's own `url`")
    payment_page_url: str = _field("", "gateways", "where Stripe Checkout sends the browser back when the order "
                                   "names no `return_url` / `cancel_url` (default: the edge's page, "
                                   "`http://127.0.0.1:$EDGE_PORT/`)")
    gateway_emulator_port: int = _field(8090, "gateways", "the emulator `make run` starts (development and "
                                        "tests only)")

    # -- payment_svc -------------------------------------------------------------------------------
    payment_gateway_connect_timeout: Seconds = _field(1.0, "payment", "per HTTP call to a gateway: connect")
    payment_gateway_read_timeout: Seconds = _field(2.5, "payment", "per HTTP call to a gateway: read")
    payment_gateway_attempts: int = _field(3, "payment", "tries per gateway per operation (retryable errors "
                                           "only)", ge=1)
    payment_gateway_backoff: Seconds = _field(0.1, "payment", "full-jitter backoff between tries: first")
    payment_gateway_max_backoff: Seconds = _field(0.8, "payment", "full-jitter backoff between tries: cap")
    payment_gateway_budget: Seconds = _field(4.5, "payment", "one gateway, one operation, retries included")
    payment_breaker_failures: int = _field(5, "payment", "consecutive failures that open a gateway's breaker",
                                           ge=1)
    payment_breaker_cooldown: Seconds = _field(30.0, "payment", "time before an open breaker lets one trial "
                                               "call through")
    payment_gateway_connections: int = _field(16, "payment", "pooled HTTP connections per gateway (its "
                                              "bulkhead: a call past them waits for one, within the timeouts)", ge=1)
    payment_open_session_bound: Seconds = _field(10.0, "payment", "a whole OpenSession, fallback included")
    payment_session_ttl: int = _field(30 * 60, "payment", "a payment session's life in seconds (the "
                                      "contract's 30 minutes; never past its order's expiry)", ge=60)
    payment_sweep_interval: Seconds = _field(30.0, "payment", "session expiry sweeper (`0`: off)")
    payment_sweep_batch: int = _field(100, "payment", "rows per sweeper transaction", ge=1)
    payment_webhook_lock_timeout: float = _field(2.0, "payment", "how long a webhook waits for a payment's row "
                                                 "lock before answering 503 (the gateway retries)", gt=0)
    webhook_max_age: Seconds = _field(3 * 24 * 3600.0, "payment", "a webhook event the gateway made longer ago "
                                      "than this (Razorpay `created_at`, Stripe `created`) is acknowledged and ignored")
    payment_reconcile_after: Seconds = _field(120.0, "payment", "a pending session older than this is looked "
                                              "up at its gateway")
    payment_reconcile_interval: Seconds = _field(60.0, "payment", "between reconciliation passes (`0`: off)")
    payment_reconcile_backoff: Seconds = _field(60.0, "payment", "a session still pending after a look-up is "
                                                "looked up again after this, then twice as long each time (less up "
                                                "to 20 % jitter)")
    payment_reconcile_max_delay: Seconds = _field(900.0, "payment", "the longest wait between two look-ups of a "
                                                  "session")
    payment_reconcile_batch: int = _field(50, "payment", "sessions per reconciliation query", ge=1)
    payment_reconcile_max: int = _field(2000, "payment", "sessions per reconciliation pass", ge=1)
    payment_reconcile_expired_grace: Seconds = _field(900.0, "payment", "sessions expired less than this long "
                                                      "ago are still looked up (a late capture is real money)")

    # -- order_svc ---------------------------------------------------------------------------------
    order_sweep_interval: Seconds = _field(30.0, "order", "unpaid-order expiry and placement recovery (`0`: off)")
    order_sweep_batch: int = _field(100, "order", "rows per sweeper transaction", ge=1)
    order_placement_timeout: Seconds = _field(120.0, "order", "a placement still converting after this long "
                                              "was abandoned by its client: its cart and coupon are released")
    order_payment_call_timeout: Seconds = _field(15.0, "order", "order_svc's deadline for one OpenSession call")
    order_cart_call_timeout: Seconds = _field(5.0, "order", "order_svc's deadline for one ConvertCart call")
    order_idempotency_lease: Seconds = _field(30.0, "order", "how long a CreateOrder holds its Idempotency-Key "
                                              "between recovery points; a request with the key meanwhile is 2006, and "
                                              "a key left by a crashed process is free again after this")
    return_url_origins: Csv = _field((), "order", "comma-separated origins a `return_url` / `cancel_url` may "
                                     "point at: `https://host[:port]`, port `*` for any; http only on localhost "
                                     "(default: the edge's own origins, over HTTPS too, `http://localhost:*` and "
                                     "`http://127.0.0.1:*`)")
    cart_sweep_interval: Seconds = _field(60.0, "cart", "expired and abandoned cart sweeper (`0`: off)")
    cart_sweep_batch: int = _field(200, "cart", "carts per sweeper transaction", ge=1)

    # -- events ------------------------------------------------------------------------------------
    nats_stream: str = _field("CHECKOUT", "events", "the JetStream stream of every `checkout.>` event")
    nats_dlq_stream: str = _field("CHECKOUT_DLQ", "events", "keeps the max-deliveries advisories of the "
                                  "consumers")
    nats_subject_prefix: str = _field("", "events", "prepended to every subject on the wire (tests: a namespace)")
    nats_replicas: int = _field(1, "events", "stream replicas (3 in a cluster)", ge=1, le=5)
    nats_duplicate_window: Seconds = _field(600.0, "events", "JetStream drops a repeated Nats-Msg-Id inside this")
    nats_max_age: Seconds = _field(7 * 24 * 3600.0, "events", "events are kept this long")
    nats_dlq_max_age: Seconds = _field(30 * 24 * 3600.0, "events", "advisories are kept this long")
    consumer_ack_wait: Seconds = _field(30.0, "events", "a delivery not acked in this time is redelivered")
    consumer_max_deliver: int = _field(5, "events", "deliveries before a message is parked as a dead letter", ge=1)
    consumer_nak_delays: Csv = _field(("1", "5", "15", "60"), "events", "seconds before redelivery after the "
                                      "1st, 2nd, … failure")
    consumer_max_in_flight: int = _field(8, "events", "deliveries a consumer handles at once: it pulls the next "
                                         "while up to this many are being handled", ge=1)
    outbox_relay_poll_interval: Seconds = _field(1.0, "events", "the relay polls this often besides LISTEN")
    outbox_relay_batch: int = _field(100, "events", "outbox rows per publish batch", ge=1)
    outbox_relay_publish_timeout: Seconds = _field(2.0, "events", "wait for one PubAck")
    outbox_relay_max_retry_delay: Seconds = _field(5.0, "events", "cap of the relay's retry backoff")

    # -- the edge ----------------------------------------------------------------------------------
    edge_port: int = _field(8080, "edge", "Envoy's REST listener")
    edge_admin_port: int = _field(9901, "edge", "Envoy's admin (loopback)")
    edge_listen_host: str = _field("127.0.0.1", "edge", "listener address (`0.0.0.0` in containers)")
    edge_domain: str = _field("interns.localhost", "edge", "`cart.<domain>` serves only catalog and cart routes, "
                              "`pay.<domain>` only order, payment and webhook routes")
    edge_max_body_bytes: int = _field(1024 * 1024, "edge", "request bodies above this are 413 (code 4013)", ge=1)
    edge_rate_limit_rps: int = _field(100, "edge", "token bucket per client address and host; past it 429", ge=1)
    edge_rate_limit_burst: int = _field(0, "edge", "bucket size (`0`: same as the rate)", ge=0)
    edge_cors_origins: Csv = _field((), "edge", "comma-separated allowed origins of the main host (default: "
                                    "localhost origins)")
    edge_cart_cors_origins: Csv = _field((), "edge", "allowed origins of `cart.<domain>` (default: as the main host)")
    edge_pay_cors_origins: Csv = _field((), "edge", "allowed origins of `pay.<domain>` (default: as the main host)")
    edge_csp: str = _field("", "edge", "Content-Security-Policy of every response (default: strict same-origin)")
    edge_hsts_max_age: int | None = _field(None, "edge", "`Strict-Transport-Security: max-age=N; includeSubDomains` "
                                           "on every HTTPS answer (`0`: none; never on plain HTTP); default one year "
                                           "in production, 300 s in development (a browser would otherwise pin "
                                           "localhost and its subdomains to HTTPS for a year)", ge=0)
    edge_tls_port: int = _field(8443, "edge", "Envoy's HTTPS listener (TLS 1.2+, HTTP/2 and HTTP/1.1 by ALPN); "
                                "on only when EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE are set")
    edge_tls_cert_file: str = _field("", "edge", "the HTTPS certificate chain (PEM; `make run` issues one for "
                                     "localhost, 127.0.0.1, cart. and pay.<EDGE_DOMAIN> in .run/certs/)")
    edge_tls_key_file: str = _field("", "edge", "its private key (PEM)")
    edge_require_tls: bool | None = _field(None, "edge", "the plain-HTTP port answers every request but `/healthz` "
                                           "and `/readyz` with a 308 redirect to HTTPS (default: on when "
                                           "ENVIRONMENT=production)")
    edge_route_timeout_ms: int = _field(15000, "edge", "upstream timeout per REST call (then 504, code 4001)", ge=1)
    edge_health_interval_ms: int = _field(1000, "edge", "active gRPC health checks of each service", ge=100)
    edge_healthz_clusters: Csv = _field((), "edge", "which services `/healthz` requires (default: all four)")
    edge_xff_trusted_hops: int = _field(0, "edge", "proxies in front of the edge whose X-Forwarded-For is "
                                        "trusted (rate limit key)", ge=0)
    edge_log_level: str = _field("warn", "edge", "Envoy's log level")
    edge_web_root: str = _field("", "edge", "the checkout page's files, served at `/` (default `web/`; `none`: "
                                "no page)")

    # -- mutual TLS between the processes (common/tls.py, docs/SECURITY.md) ---------------------
    tls_ca_file: str = _field("", "tls", "the internal CA bundle every gRPC server and client trusts (PEM; may hold "
                              "the old and the new CA during a rollover)")
    tls_cert_file: str = _field("", "tls", "this process's certificate: its identity is the URI SAN "
                                "`spiffe://interns/<name>` (`make run` issues one per process in .run/certs/)")
    tls_key_file: str = _field("", "tls", "this process's private key (PEM)")
    grpc_plaintext: bool = _field(False, "tls", "development and tests only: gRPC without TLS, so without caller "
                                  "identities and the caller table (refused in production)")

    # -- tests -------------------------------------------------------------------------------------
    checkout_fault: str = _field("", "tests", "crash tests: fault points where the process SIGKILLs itself; "
                                 "ignored (with a warning) unless CHECKOUT_TEST_HOOKS is set")
    checkout_test_hooks: bool = _field(False, "tests", "enables CHECKOUT_FAULT; never set outside tests")

    @field_validator("razorpay_webhook_secret", "stripe_webhook_secret", "consumer_nak_delays", "edge_cors_origins",
                     "edge_cart_cors_origins", "edge_pay_cors_origins", "edge_healthz_clusters", "return_url_origins",
                     mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("consumer_nak_delays")
    @classmethod
    def _numbers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for part in value:
            float(part)  # ValueError names the field
        return value

    @model_validator(mode="after")
    def _safe_for_production(self) -> Settings:
        problems = self.unsafe_for_production() if self.environment == "production" else []
        if problems:
            raise ValueError("ENVIRONMENT=production refuses to start: " + "; ".join(problems))
        return self

    def unsafe_for_production(self) -> list[str]:
        """What would let anyone mint tokens or call us from a developer's browser."""
        problems: list[str] = []
        if self.grpc_plaintext:
            problems.append("GRPC_PLAINTEXT is set (gRPC must be mutual TLS)")
        if self.jwt_secret_is_dev_default:
            problems.append("JWT_SECRET is the development default")
        elif len(self.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            problems.append(f"JWT_SECRET is shorter than {MIN_JWT_SECRET_BYTES} bytes")
        for name in ("edge_cors_origins", "edge_cart_cors_origins", "edge_pay_cors_origins"):
            origins: tuple[str, ...] = getattr(self, name)
            if name == "edge_cors_origins" and not origins:
                problems.append("EDGE_CORS_ORIGINS is unset (its default is the localhost origins)")
            local = [origin for origin in origins if _is_local_origin(origin)]
            if local:
                problems.append(f"{name.upper()} names local origins ({', '.join(local)})")
        if not self.return_url_origins:
            problems.append("RETURN_URL_ORIGINS is unset (its default is the localhost origins)")
        plain = [origin for origin in self.return_url_origins
                 if _is_local_origin(origin.replace(":*", "")) or not origin.startswith("https://")]
        if plain:
            problems.append(f"RETURN_URL_ORIGINS names local or plain-http origins ({', '.join(plain)})")
        return problems

    def model_post_init(self, context: Any, /) -> None:
        """The settings left unset that others imply; after validation, so the private
        `_derived_fields` (set up by pydantic just before this runs) keeps what was derived."""
        emulator = f"http://127.0.0.1:{self.gateway_emulator_port}"
        derived: dict[str, object] = {}
        if self.edge_require_tls is None:
            derived["edge_require_tls"] = self.environment == "production"
        if self.edge_hsts_max_age is None:
            derived["edge_hsts_max_age"] = 365 * 24 * 3600 if self.environment == "production" else 300
        for service in SERVICES:
            if not getattr(self, f"{service}_database_url"):
                derived[f"{service}_database_url"] = as_role(self.database_url, ROLES[service])
        if not self.cart_read_database_url:
            derived["cart_read_database_url"] = (as_role(self.read_database_url, ROLES["cart"]) if self.read_database_url
                                                 else derived.get("cart_database_url", self.cart_database_url))
        if not self.cart_grpc_address:
            derived["cart_grpc_address"] = self.local_grpc_address("cart")
        if not self.payment_grpc_address:
            derived["payment_grpc_address"] = self.local_grpc_address("payment")
        if not self.razorpay_base_url:
            derived["razorpay_base_url"] = emulator
        if not self.stripe_base_url:
            derived["stripe_base_url"] = emulator
        if not self.razorpay_checkout_js_url:
            derived["razorpay_checkout_js_url"] = checkout_js_url(str(derived.get("razorpay_base_url",
                                                                                  self.razorpay_base_url)))
        if not self.payment_page_url:
            derived["payment_page_url"] = f"http://127.0.0.1:{self.edge_port}/"
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # frozen: derived once, at load
        self._derived_fields = frozenset(derived)

    # -- what the fields mean together -----------------------------------------------------------
    @property
    def jwt_secret_is_dev_default(self) -> bool:
        return self.jwt_secret == DEV_JWT_SECRET

    @property
    def nak_delays(self) -> tuple[float, ...]:
        return tuple(float(part) for part in self.consumer_nak_delays)

    def service_database_url(self, service: str) -> str:
        return str(getattr(self, f"{service}_database_url"))

    def grpc_port(self, service: str) -> int:
        return int(getattr(self, f"{service}_grpc_port"))

    def local_grpc_address(self, service: str) -> str:
        """A gRPC target of every local replica of `service` (a list target when there are several)."""
        ports = [self.grpc_port(service) + i * self.replica_port_step for i in range(self.service_replicas)]
        if len(ports) == 1:
            return f"127.0.0.1:{ports[0]}"
        return "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports)

    @property
    def traces_dir(self) -> str:
        return self.tracing_dir or str(_ROOT / ".run" / "traces")

    def metrics_port(self, service: str) -> int:
        return int(getattr(self, f"{service}_metrics_port"))

    def workers_ports(self, service: str) -> list[tuple[int, int]]:
        """(gRPC, metrics) ports of the SERVICE_ROLE=workers processes of `service` under
        SPLIT_WORKERS: one per replica, on the replica slots after the last replica's."""
        step, grpc_port, metrics_port = self.replica_port_step, self.grpc_port(service), self.metrics_port(service)
        slots = [self.service_replicas + i for i in range(self.service_replicas)]
        return [(grpc_port + slot * step, metrics_port + slot * step if metrics_port else 0) for slot in slots]

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes`, validated and derived again (tests, per-process overrides)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        for name in self._derived_fields - changes.keys():  # derived at load: derive it again from the new values
            values[name] = type(self).model_fields[name].default
        values.update(changes)
        return type(self).model_validate(values)


def checkout_js_url(razorpay_base_url: str) -> str:
    """Razorpay's checkout.js for Razorpay's API; an emulator serves its own at the same path."""
    if urlsplit(razorpay_base_url).hostname == RAZORPAY_API_HOST:
        return RAZORPAY_CHECKOUT_JS
    return f"{razorpay_base_url.rstrip('/')}/v1/checkout.js"


def _is_local_origin(origin: str) -> bool:
    host = urlsplit(origin).hostname or ""
    return host == "localhost" or host.endswith(".localhost") or host.startswith("127.") or host in ("::1", "0.0.0.0")


def as_role(database_url: str, role: str) -> str:
    """`database_url` with `role` as its user (and no password: trust or a pgpass/URL of its own)."""
    return make_url(database_url)._replace(username=role, password=None).render_as_string(hide_password=False)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """From `env` (default: the process environment); a bad value stops the process, naming it."""
    try:
        if env is None:
            return Settings()
        # as from the process environment: names in any case, an empty value means the default
        return Settings.model_validate({key.lower(): value for key, value in env.items()
                                        if key.lower() in Settings.model_fields and value != ""})
    except ValidationError as error:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in error.errors())
        raise SystemExit(f"invalid settings: {problems}") from None


def _problem(location: tuple[Any, ...], message: str) -> str:
    where = ".".join(str(part) for part in location).upper()
    message = message.removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


@functools.cache
def process_settings() -> Settings:
    """The settings of this process, read once."""
    return load_settings()
