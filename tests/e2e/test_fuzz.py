"""Fuzzing the REST edge from its own OpenAPI document (schemathesis), against the whole stack:
the four services with this session's database, Redis and NATS, the gateway emulator behind
payment_svc, and the edge serving /openapi.json.

Every operation of the document gets a bounded number of generated requests (valid and invalid
ones), with a user's bearer token (an admin's on /api/v1/admin/ routes) where the operation takes
one. Each answer must be:

* no 5xx, except 503 with code 4001 (a dependency down; none should be here);
* an error (status >= 400) in CONTRACT.md's envelope, with the status of its code;
* what the document says (schemathesis' response_schema_conformance and content type checks):
  a success body is the schema of its operation, so the document is checked against the edge too.

Then a stateful run follows the document's links (a new cart → its reads and changes → an order
→ its reads) for a few bounded sequences.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema_rs import Draft202012Validator
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from common.errors import ErrorCode
from edge.settings import ROOT
from gateway_emulator.runner import start_emulator

pytestmark = pytest.mark.timeout(300)

EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "30"))
STATEFUL_SEQUENCES = int(os.environ.get("FUZZ_SEQUENCES", "10"))
ADMIN_PREFIX = "/api/v1/admin/"
DOCUMENT = ROOT / "gen" / "openapi.json"
CODES = {member.spec.code: member.spec.http_status for member in ErrorCode}
ERROR_FIELDS = {"code", "message", "validation_messages", "correlation_id", "retryable", "suggested_action"}


@pytest.fixture(scope="module")
def emulator():
    with start_emulator(port=0) as running:
        running.set_webhook_targets(razorpay=None, stripe=None)
        yield running


@pytest.fixture(scope="module")
def stack_services():
    return ("cart", "order", "payment", "enrollment")


@pytest.fixture(scope="module")
def stack_env(emulator):
    return {"RAZORPAY_BASE_URL": emulator.url, "STRIPE_BASE_URL": emulator.url, "PAYMENT_SWEEP_INTERVAL": "0"}


@pytest.fixture(scope="module")
def api_schema(stack):
    """The document as the edge serves it, aimed at that edge."""
    schema = schemathesis.openapi.from_url(f"{stack.url}/openapi.json")
    schema.config.update(base_url=stack.url)
    return schema


@pytest.fixture(scope="module")
def tokens(stack) -> dict[str, dict[str, str]]:
    return {"user": stack.bearer(str(uuid.uuid4())), "admin": stack.admin()}


def credentials(case: Any, tokens: dict[str, dict[str, str]]) -> dict[str, str]:
    """The bearer the operation takes: none where the document says it uses none."""
    security = case.operation.definition.raw.get("security")
    if security == []:
        return {}
    return tokens["admin"] if case.operation.path.startswith(ADMIN_PREFIX) else tokens["user"]


def error_in_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error is CONTRACT.md's envelope, with the HTTP status its code stands for."""
    if response.status_code < 400:
        return None
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), \
        f"{response.status_code} without a JSON body: {response.headers}"
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"status", "success", "error"}, body
    assert body["status"] == response.status_code and body["success"] is False, body
    error = body["error"]
    assert set(error) == ERROR_FIELDS, error
    assert error["code"] in CODES, f"code {error['code']} is not in common/errors.py"
    assert CODES[error["code"]] == response.status_code, f"code {error['code']} answered with {response.status_code}"
    assert "Traceback" not in response.text and "Error:" not in error["message"], error
    return True


def no_5xx_but_dependency_down(ctx: Any, response: Any, case: Any) -> bool | None:
    """not_a_server_error, except the contract's 503 (4001, retryable) for a dependency down."""
    if response.status_code == 503 and response.json().get("error", {}).get("code") == 4001:
        return True
    return not_a_server_error(ctx, response, case)


CHECKS = [no_5xx_but_dependency_down, error_in_envelope, response_schema_conformance, content_type_conformance]

# Collected from the committed document (test_the_served_document_is_the_generated_one checks
# the edge serves the same); the cases are generated from the document the edge serves.
LABELS = [f"{method.upper()} {path}" for path, methods in json.loads(DOCUMENT.read_text())["paths"].items() for method in methods]


@pytest.mark.parametrize("label", LABELS)
def test_every_operation_answers_in_the_contract(label, api_schema, tokens, stack):
    operation = api_schema.find_operation_by_label(label)
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=not os.environ.get("FUZZ_RANDOM"), database=None,
              suppress_health_check=list(HealthCheck))
    def answers_in_the_contract(case: Any) -> None:
        case.call_and_validate(base_url=stack.url, headers=credentials(case, tokens), checks=CHECKS)

    answers_in_the_contract()


def test_the_served_document_is_the_generated_one(stack, api_schema):
    with httpx.Client(base_url=stack.url) as client:
        assert client.get("/openapi.json").content == DOCUMENT.read_bytes()
    assert sorted(op.ok().label for op in api_schema.get_all_operations()) == sorted(LABELS)


def test_stateful_sequences_follow_the_links(api_schema, tokens, stack):
    """Bounded sequences along the document's links and the ones schemathesis infers (a plan of
    the catalog into a cart, a new cart's token into its reads and changes, into an order, an
    order's token into its reads): every answer under the same checks."""

    class Checkout(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": stack.url, "headers": credentials(case, tokens)}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    Checkout.run(settings=settings(max_examples=STATEFUL_SEQUENCES, stateful_step_count=8, deadline=None,
                                   derandomize=not os.environ.get("FUZZ_RANDOM"), database=None,
                                   suppress_health_check=list(HealthCheck)))


# -- the document against real answers: a whole checkout's successes, each validated against the
# -- schema of its operation (random requests rarely succeed, so these are checked on purpose)

PLAN = "7a1e0000-0000-4000-8000-000000000101"  # sample catalog: 1499.00 INR


def conforms(document: dict, response: httpx.Response, method: str, template: str) -> dict:
    """The answer is a 200 whose JSON body is what the document says the operation answers."""
    assert response.status_code == 200, (method, template, response.status_code, response.text)
    operation = document["paths"][template][method.lower()]
    content = operation["responses"]["200"]["content"]
    assert list(content) == ["application/json"] and response.headers["content-type"].startswith("application/json")
    root = {**document, **content["application/json"]["schema"]}  # "#/components/..." resolves in the document
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in Draft202012Validator(root).iter_errors(response.json())]
    assert not errors, (method, template, errors)
    return response.json()


def test_a_whole_checkout_answers_as_the_document_says(stack, tokens):
    document = json.loads(DOCUMENT.read_text())
    user, admin = tokens["user"], tokens["admin"]
    with stack.client() as api:
        conforms(document, api.get("/api/v1/ping"), "GET", "/api/v1/ping")
        conforms(document, api.get("/api/v1/internships"), "GET", "/api/v1/internships")
        code = f"FUZZ{uuid.uuid4().hex[:8].upper()}"
        conforms(document, api.post("/api/v1/admin/coupons", headers=admin, json={"code": code, "kind": "percent", "value": "10", "listed": True}),
                 "POST", "/api/v1/admin/coupons")
        slug = f"fuzz-{uuid.uuid4().hex[:8]}"
        conforms(document, api.post("/api/v1/admin/sales", headers=admin, json={"sale_slug": slug, "kind": "percent", "value": "5"}),
                 "POST", "/api/v1/admin/sales")
        conforms(document, api.get(f"/api/v1/sales/{slug}"), "GET", "/api/v1/sales/{sale_slug}")
        conforms(document, api.get("/api/v1/admin/dead-letters", headers=admin), "GET", "/api/v1/admin/dead-letters")

        cart = conforms(document, api.post("/api-proxy/api/cart", headers=user, json={"items": [{"plan_id": PLAN, "quantity": 1}]}),
                        "POST", "/api-proxy/api/cart")
        token = cart["token"]
        conforms(document, api.get(f"/api/v1/cart/{token}", headers=user), "GET", "/api/v1/cart/{token}")
        conforms(document, api.post(f"/api/v1/cart/{token}/coupon", headers=user, json={"code": code}), "POST", "/api/v1/cart/{token}/coupon")
        conforms(document, api.get(f"/api/v1/cart/{token}/discounts", headers=user), "GET", "/api/v1/cart/{token}/discounts")
        conforms(document, api.post(f"/api/v1/cart/{token}/auth/check", headers=user, json={}), "POST", "/api/v1/cart/{token}/auth/check")
        conforms(document, api.post("/api/v1/cart/estimate", headers=user, json={"cart_token": token, "billing": {"country": "IN", "state": "KA"}}),
                 "POST", "/api/v1/cart/estimate")
        order = conforms(document, api.post("/api/v1/order", headers={**user, "Idempotency-Key": str(uuid.uuid4())},
                                            json={"cart_token": token, "billing": {"country": "IN", "state": "MH"}}),
                         "POST", "/api/v1/order")
        assert order["payment"]["payment_token"] and order["taxes"]
        conforms(document, api.get(f"/api/v1/order/{order['order_token']}", headers=user), "GET", "/api/v1/order/{order_token}")
        conforms(document, api.get(f"/api/v1/payment/{order['payment']['payment_token']}", headers=user), "GET", "/api/v1/payment/{payment_token}")
        conforms(document, api.get("/api/v1/enrollments", headers=user), "GET", "/api/v1/enrollments")

        guest = conforms(document, api.post("/api-proxy/api/cart", json={"items": []}), "POST", "/api-proxy/api/cart")
        conforms(document, api.post(f"/api/v1/cart/{guest['token']}/items", json={"plan_id": PLAN, "quantity": 2}),
                 "POST", "/api/v1/cart/{token}/items")
        conforms(document, api.delete(f"/api/v1/cart/{guest['token']}/coupon"), "DELETE", "/api/v1/cart/{token}/coupon")
        conforms(document, api.post(f"/api/v1/cart/{guest['token']}/auth/login", headers=user, json={}),
                 "POST", "/api/v1/cart/{token}/auth/login")
