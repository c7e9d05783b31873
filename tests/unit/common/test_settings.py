"""The one settings model (common/settings.py): parsing, comma-separated lists, derived URLs and
addresses, and a bad value that stops the process with the variable's name."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from common.settings import DEV_JWT_SECRET, ROLES, SERVICES, Settings, as_role, load_settings
from tests.support.processes import inherited_env

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_defaults_point_at_what_make_run_starts() -> None:
    settings = load_settings({})
    assert settings.database_url == "postgresql+psycopg://postgres@127.0.0.1:55432/checkout"
    assert settings.nats_url == "nats://127.0.0.1:54222" and settings.redis_url == "redis://127.0.0.1:56379/0"
    assert settings.jwt_secret == DEV_JWT_SECRET and settings.jwt_secret_is_dev_default
    assert settings.consumer_nak_delays == ("1", "5", "15", "60") and settings.nak_delays == (1.0, 5.0, 15.0, 60.0)
    assert settings.edge_domain == "interns.localhost"
    assert settings.edge_cors_origins == settings.edge_cart_cors_origins == settings.edge_pay_cors_origins == ()
    assert [settings.grpc_port(s) for s in SERVICES] == [50051, 50052, 50053, 50054]


def test_values_are_parsed_to_their_types() -> None:
    settings = load_settings({"CART_TTL": "600", "PAYMENT_GATEWAY_BACKOFF": "0.25", "CHECKOUT_TEST_HOOKS": "yes",
                              "EDGE_PORT": "18080", "LOG_LEVEL": "DEBUG", "NOT_A_SETTING": "ignored"})
    assert settings.cart_ttl == 600 and isinstance(settings.cart_ttl, int)
    assert settings.payment_gateway_backoff == 0.25
    assert settings.checkout_test_hooks is True
    assert settings.edge_port == 18080 and settings.log_level == "DEBUG"


def test_an_empty_value_means_the_default() -> None:
    assert load_settings({"CART_TTL": "", "EDGE_CORS_ORIGINS": ""}) == load_settings({})


@pytest.mark.parametrize(("name", "raw", "parsed"), [
    ("EDGE_CORS_ORIGINS", "https://a.example, https://b.example ,,", ("https://a.example", "https://b.example")),
    ("EDGE_CART_CORS_ORIGINS", "https://shop.example", ("https://shop.example",)),
    ("EDGE_PAY_CORS_ORIGINS", " https://pay.example ", ("https://pay.example",)),
    ("RAZORPAY_WEBHOOK_SECRET", "new-secret,old-secret", ("new-secret", "old-secret")),
    ("STRIPE_WEBHOOK_SECRET", "whsec_1", ("whsec_1",)),
    ("CONSUMER_NAK_DELAYS", "0.5, 2,10", ("0.5", "2", "10")),
    ("EDGE_HEALTHZ_CLUSTERS", "cart,order", ("cart", "order")),
])
def test_comma_separated_lists(name: str, raw: str, parsed: tuple[str, ...]) -> None:
    assert getattr(load_settings({name: raw}), name.lower()) == parsed


def test_each_service_url_is_derived_from_the_administrators_as_its_own_role() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql+psycopg://admin:secret@db.example:5433/shop",
                              "ORDER_DATABASE_URL": "postgresql+psycopg://checkout_order:pw@orders.example/ordering"})
    assert settings.cart_database_url == "postgresql+psycopg://checkout_cart@db.example:5433/shop"  # no password
    assert settings.payment_database_url == "postgresql+psycopg://checkout_payment@db.example:5433/shop"
    assert settings.enrollment_database_url == "postgresql+psycopg://checkout_enrollment@db.example:5433/shop"
    assert settings.order_database_url == "postgresql+psycopg://checkout_order:pw@orders.example/ordering"  # as set
    assert {s: settings.service_database_url(s).split("://")[1].split("@")[0].split(":")[0] for s in SERVICES} == ROLES


def test_addresses_and_gateway_urls_are_derived_from_the_ports() -> None:
    settings = load_settings({"CART_GRPC_PORT": "6001", "PAYMENT_GRPC_PORT": "6003", "GATEWAY_EMULATOR_PORT": "9999"})
    assert settings.cart_grpc_address == "127.0.0.1:6001" and settings.payment_grpc_address == "127.0.0.1:6003"
    assert settings.razorpay_base_url == settings.stripe_base_url == "http://127.0.0.1:9999"
    real = load_settings({"CART_GRPC_ADDRESS": "cart_svc:50051", "RAZORPAY_BASE_URL": "https://api.razorpay.com"})
    assert real.cart_grpc_address == "cart_svc:50051" and real.razorpay_base_url == "https://api.razorpay.com"


def test_the_razorpay_checkout_script_is_razorpays_for_razorpays_api_else_the_emulators() -> None:
    assert load_settings({}).razorpay_checkout_js_url == "http://127.0.0.1:8090/v1/checkout.js"
    assert load_settings({"GATEWAY_EMULATOR_PORT": "9999"}).razorpay_checkout_js_url == "http://127.0.0.1:9999/v1/checkout.js"
    real = load_settings({"RAZORPAY_BASE_URL": "https://api.razorpay.com/"})
    assert real.razorpay_checkout_js_url == "https://checkout.razorpay.com/v1/checkout.js"
    chosen = load_settings({"RAZORPAY_CHECKOUT_JS_URL": "https://cdn.example/checkout.js"})
    assert chosen.razorpay_checkout_js_url == "https://cdn.example/checkout.js"  # set: kept, whatever the base
    # a test's emulator on another port: the derived script follows the base, a chosen one stays
    assert load_settings({}).replace(razorpay_base_url="http://127.0.0.1:4242").razorpay_checkout_js_url == (
        "http://127.0.0.1:4242/v1/checkout.js")
    assert chosen.replace(razorpay_base_url="http://127.0.0.1:4242").razorpay_checkout_js_url == (
        "https://cdn.example/checkout.js")


def test_replace_validates_and_derives_again() -> None:
    base = load_settings({"PAYMENT_DATABASE_URL": "postgresql+psycopg://checkout_payment:pw@pay.example/p"})
    moved = base.replace(database_url="postgresql+psycopg://postgres@10.0.0.9:5432/other", cart_ttl=5)
    assert moved.cart_database_url == as_role("postgresql+psycopg://postgres@10.0.0.9:5432/other", "checkout_cart")
    assert moved.payment_database_url == "postgresql+psycopg://checkout_payment:pw@pay.example/p"  # set, so kept
    assert moved.cart_ttl == 5 and base.cart_ttl == 24 * 3600
    # the catalog's read URL follows the primary it was derived from (the browser stack once read
    # the catalog from make run's database), and the replica once one is named
    assert moved.cart_read_database_url == moved.cart_database_url
    replica = "postgresql+psycopg://postgres@10.0.0.10:5432/other"
    assert moved.replace(read_database_url=replica).cart_read_database_url == as_role(replica, "checkout_cart")
    pinned = base.replace(cart_read_database_url="postgresql+psycopg://r@elsewhere/x")
    assert pinned.replace(database_url=replica).cart_read_database_url == "postgresql+psycopg://r@elsewhere/x"
    with pytest.raises(Exception, match="cart_ttl"):
        base.replace(cart_ttl=0)


def test_settings_are_frozen() -> None:
    with pytest.raises(Exception, match="frozen"):
        load_settings({}).cart_ttl = 1  # type: ignore[misc]


@pytest.mark.parametrize(("env", "named"), [
    ({"CART_TTL": "a day"}, "CART_TTL"),
    ({"ORDER_TTL": "10"}, "ORDER_TTL"),  # below its minimum
    ({"EDGE_PORT": "http"}, "EDGE_PORT"),
    ({"CONSUMER_NAK_DELAYS": "1,soon"}, "CONSUMER_NAK_DELAYS"),
    ({"CHECKOUT_TEST_HOOKS": "perhaps"}, "CHECKOUT_TEST_HOOKS"),
    ({"NATS_REPLICAS": "9"}, "NATS_REPLICAS"),
])
def test_a_bad_value_stops_with_the_variables_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        load_settings(env)
    assert str(stopped.value).startswith("invalid settings: ") and f"{named}:" in str(stopped.value)


def test_a_bad_value_in_the_process_environment_stops_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENT_SESSION_TTL", "half an hour")
    with pytest.raises(SystemExit, match="PAYMENT_SESSION_TTL"):
        load_settings()
    monkeypatch.setenv("PAYMENT_SESSION_TTL", "900")
    assert load_settings().payment_session_ttl == 900


def test_a_process_that_misreads_a_setting_never_starts() -> None:
    code = "from common.settings import process_settings; process_settings(); print('started')"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=inherited_env() | {"DB_POOL_SIZE": "zero"},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "started" not in run.stdout
    assert "invalid settings: DB_POOL_SIZE:" in run.stderr and "Traceback" not in run.stderr


def test_every_field_documents_itself() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("group"), name


# GRPC_PLAINTEXT=0: the suite's own switch (tests/conftest.py) is in the process environment too
PRODUCTION = {"ENVIRONMENT": "production", "JWT_SECRET": "s" * 32, "EDGE_CORS_ORIGINS": "https://interns.example.com",
              "RETURN_URL_ORIGINS": "https://interns.example.com", "GRPC_PLAINTEXT": "0"}


def test_production_starts_with_real_secrets_and_origins() -> None:
    settings = load_settings(PRODUCTION)
    assert settings.environment == "production" and settings.unsafe_for_production() == []


@pytest.mark.parametrize(("change", "named"), [
    ({"JWT_SECRET": ""}, "JWT_SECRET is the development default"),  # empty means the default
    ({"JWT_SECRET": "s" * 31}, "JWT_SECRET is shorter than 32 bytes"),
    ({"EDGE_CORS_ORIGINS": ""}, "EDGE_CORS_ORIGINS is unset"),
    ({"EDGE_CORS_ORIGINS": "https://interns.example.com,http://localhost:5173"}, "EDGE_CORS_ORIGINS names local"),
    ({"EDGE_CART_CORS_ORIGINS": "http://127.0.0.1:8080"}, "EDGE_CART_CORS_ORIGINS names local"),
    ({"EDGE_PAY_CORS_ORIGINS": "http://pay.interns.localhost"}, "EDGE_PAY_CORS_ORIGINS names local"),
    ({"RETURN_URL_ORIGINS": ""}, "RETURN_URL_ORIGINS is unset"),
    ({"RETURN_URL_ORIGINS": "https://interns.example.com,http://localhost:*"}, "RETURN_URL_ORIGINS names local"),
    ({"GRPC_PLAINTEXT": "1"}, "GRPC_PLAINTEXT is set"),
])
def test_production_refuses_to_start_on_development_secrets_or_origins(change: dict[str, str], named: str) -> None:
    with pytest.raises(SystemExit) as refused:
        load_settings({**PRODUCTION, **change})
    assert named in str(refused.value) and "ENVIRONMENT=production refuses to start" in str(refused.value)


def test_development_only_warns() -> None:
    settings = load_settings({"JWT_SECRET": "short", "EDGE_CORS_ORIGINS": "http://localhost:3000", "GRPC_PLAINTEXT": "0"})
    assert settings.environment == "development" and len(settings.unsafe_for_production()) == 3  # + RETURN_URL_ORIGINS


def test_production_requires_tls_at_the_edge_unless_told_otherwise() -> None:
    assert load_settings(PRODUCTION).edge_require_tls is True
    assert load_settings({**PRODUCTION, "EDGE_REQUIRE_TLS": "0"}).edge_require_tls is False
    assert load_settings({"GRPC_PLAINTEXT": "0"}).edge_require_tls is False
    assert load_settings({"EDGE_REQUIRE_TLS": "1"}).edge_require_tls is True


def test_hsts_pins_for_a_year_in_production_and_five_minutes_in_development() -> None:
    assert load_settings(PRODUCTION).edge_hsts_max_age == 365 * 24 * 3600
    assert load_settings({"GRPC_PLAINTEXT": "0"}).edge_hsts_max_age == 300
    assert load_settings({"EDGE_HSTS_MAX_AGE": "0"}).edge_hsts_max_age == 0
    development = load_settings({key: value for key, value in PRODUCTION.items() if key != "ENVIRONMENT"})
    assert development.replace(environment="production").edge_hsts_max_age == 365 * 24 * 3600
