"""gen/openapi.json (tools/openapi.py): every route Envoy transcodes is an operation and every
operation a route Envoy transcodes; the proto3 JSON mapping the edge prints; auth, idempotency,
webhook headers, files and errors as the services and the edge behave. (Staleness: the gen/ test.)"""

from __future__ import annotations

import json
import pathlib
import re

import pytest
from grpc_tools import protoc

from common.errors import ErrorCode
from edge import config as edge_config
from edge import descriptors
from edge.settings import DESCRIPTOR_PATH, HOST_SERVICES, EdgeSettings
from tools import openapi, vendor_swagger_ui
from tools.gen_protos import ROOT, _googleapis_include

DOCUMENT = json.loads((ROOT / "gen" / "openapi.json").read_text())
VERBS = ("get", "put", "post", "delete", "patch")


def operations(document: dict) -> dict[tuple[str, str], dict]:
    return {(verb, path): op for path, item in document["paths"].items() for verb, op in item.items() if verb in VERBS}


def _transcoder_services(bootstrap: dict) -> list[str]:
    hcm = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    transcoder = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.grpc_json_transcoder")
    return transcoder["typed_config"]["services"]


def _openapi_path(template: str) -> str:
    return re.sub(r"\{([^}=]+)(?:=[^}]*)?\}", r"{\1}", template)


def test_every_route_envoy_transcodes_is_documented_and_nothing_else():
    services = _transcoder_services(edge_config.bootstrap(EdgeSettings()))
    rules = descriptors.http_rules(descriptors.load(DESCRIPTOR_PATH))
    routed = {(rule.verb.lower(), _openapi_path(rule.template)) for rule in rules if rule.service in services}
    documented = set(operations(DOCUMENT))
    assert routed - documented == set(), "routes Envoy transcodes that the document lacks: run `make gen`"
    assert documented - routed == set(), "operations no Envoy route serves"
    assert len(routed) >= 30
    # every service the descriptor set has is transcoded on the main host; the dedicated hosts' are a subset
    assert sorted(services) == sorted(descriptors.service_names(descriptors.load(DESCRIPTOR_PATH)))
    for hosted in HOST_SERVICES.values():
        assert {f"{descriptors.PACKAGE}.{name}" for name in hosted} <= set(services)


def test_path_parameters_are_the_templates_variables_and_required():
    for (verb, path), op in operations(DOCUMENT).items():
        variables = re.findall(r"\{([^}]+)\}", path)
        declared = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
        assert declared == variables, (verb, path)
        assert all(p["required"] for p in op.get("parameters", []) if p["in"] == "path")


def test_bodies_follow_the_http_rule():
    ops = operations(DOCUMENT)
    # body "*" with a path field: the rest of the message, the path field left out
    add_item = ops[("post", "/api/v1/cart/{token}/items")]["requestBody"]["content"]["application/json"]["schema"]
    assert set(add_item["properties"]) == {"plan_id", "quantity", "internship_id", "period"}
    assert "required" not in add_item  # proto3: the service says what is missing
    # body "*" without path fields: the request message itself
    create = ops[("post", "/api/v1/order")]["requestBody"]["content"]["application/json"]["schema"]
    assert create == {"$ref": "#/components/schemas/CreateOrderRequest"}
    assert ("get", "/api/v1/cart/{token}") in ops and "requestBody" not in ops[("get", "/api/v1/cart/{token}")]


def test_responses_are_the_json_the_edge_prints():
    schemas = DOCUMENT["components"]["schemas"]
    cart = schemas["Cart"]
    # always_print_primitive_fields: every string, number, bool and list is there, even empty
    assert set(cart["required"]) == set(cart["properties"]) and cart["additionalProperties"] is False
    assert cart["properties"]["items"] == {"type": "array", "items": {"$ref": "#/components/schemas/CartItem"}}
    # an unset message field is left out: Order.payment is not required
    assert "payment" in schemas["Order"]["properties"] and "payment" not in schemas["Order"]["required"]
    # snake_case proto names, never lowerCamelCase
    assert "order_token" in schemas["Order"]["properties"] and "orderToken" not in json.dumps(DOCUMENT)
    # a message used in requests and answers has a request twin with nothing required
    assert schemas["Period"]["required"] == ["value", "unit"] and "required" not in schemas["PeriodInput"]


def test_auth_idempotency_webhooks_and_files():
    ops = operations(DOCUMENT)
    bearer, optional, none = [{"bearer": []}], [{}, {"bearer": []}], []
    for (_, path), op in ops.items():
        if path.startswith("/api/v1/admin/"):
            assert op["security"] == bearer and "admin" in op["description"], path
    assert ops[("post", "/api/v1/order")]["security"] == bearer
    assert ops[("get", "/api/v1/enrollments")]["security"] == bearer
    assert ops[("post", "/api-proxy/api/cart")]["security"] == optional  # a guest cart, or the user's
    assert ops[("get", "/api/v1/internships")]["security"] == none
    assert ops[("post", "/api/v1/webhooks/razorpay")]["security"] == none
    headers = {p["name"]: p for p in ops[("post", "/api/v1/order")]["parameters"] if p["in"] == "header"}
    assert list(headers) == ["Idempotency-Key"] and headers["Idempotency-Key"]["required"] is False
    razorpay = {p["name"]: p["required"] for p in ops[("post", "/api/v1/webhooks/razorpay")]["parameters"]}
    assert razorpay == {"X-Razorpay-Signature": True, "X-Razorpay-Event-Id": False}
    assert [p["name"] for p in ops[("post", "/api/v1/webhooks/stripe")]["parameters"]] == ["Stripe-Signature"]
    raw = ops[("post", "/api/v1/webhooks/stripe")]["requestBody"]["content"]["application/json"]["schema"]
    assert raw == {"type": "object"}  # the raw event (google.api.HttpBody)
    invoice = ops[("get", "/api/v1/order/{order_token}/invoice")]["responses"]["200"]["content"]
    assert list(invoice) == ["application/pdf"]
    # the tables name operations that exist (a renamed RPC must not silently lose its auth)
    keys = {op["operationId"].replace("_", ".", 1) for op in ops.values()}
    for table in (openapi.BEARER_REQUIRED, openapi.BEARER_UNUSED, openapi.WEBHOOK_HEADERS, openapi.FILE_TYPES, openapi.LINKS):
        assert set(table) <= keys, set(table) - keys
    assert "OrderService.CreateOrder" in keys


def test_links_lead_from_a_cart_to_an_order():
    create_cart = operations(DOCUMENT)[("post", "/api-proxy/api/cart")]["responses"]["200"]["links"]
    assert create_cart["OrderService_CreateOrder"] == {"operationId": "OrderService_CreateOrder",
                                                       "requestBody": {"cart_token": "$response.body#/token"}}
    assert create_cart["CartService_GetCart"]["parameters"] == {"token": "$response.body#/token"}


def test_every_error_code_and_status_is_documented():
    envelope = DOCUMENT["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["status", "success", "error"]
    assert envelope["properties"]["error"]["properties"]["code"]["enum"] == sorted(m.spec.code for m in ErrorCode)
    assert set(DOCUMENT["components"]["responses"]) == {str(m.spec.http_status) for m in ErrorCode}
    for member in ErrorCode:
        assert f"| {member.spec.code} | {member.spec.message} | {member.spec.http_status} |" in DOCUMENT["info"]["description"]
    for op in operations(DOCUMENT).values():
        assert op["responses"]["default"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
        assert {"400", "429", "503"} <= set(op["responses"])


def test_descriptions_come_from_the_proto_comments():
    ops = operations(DOCUMENT)
    assert "Idempotency-Key" in ops[("post", "/api/v1/order")]["description"]
    assert DOCUMENT["components"]["schemas"]["Cart"]["properties"]["user_id"]["description"] == "empty for a guest cart"
    assert DOCUMENT["openapi"] == "3.1.0" and "make token" in DOCUMENT["info"]["description"]


SAMPLE = """
syntax = "proto3";
package checkout.v1;
import "google/api/annotations.proto";
import "google/api/httpbody.proto";
import "google/protobuf/timestamp.proto";

// Things, for the test.
service ThingService {
  // Reads a thing.
  rpc GetThing(GetThingRequest) returns (Thing) { option (google.api.http) = { get: "/api/v1/things/{id}" }; }
  rpc PutThing(PutThingRequest) returns (Thing) {
    option (google.api.http) = { put: "/api/v1/things/{id}" body: "thing" additional_bindings { post: "/api/v1/things" body: "*" } };
  }
  rpc Photo(GetThingRequest) returns (google.api.HttpBody) { option (google.api.http) = { get: "/api/v1/things/{id}/photo" }; }
}
enum Color { COLOR_UNSPECIFIED = 0; RED = 1; }
message Filter { string owner = 1; repeated string tags = 2; }
message GetThingRequest { string id = 1; Filter filter = 2; int64 since = 3; map<string, string> labels = 4; }
message Thing {
  string id = 1;      // the id
  int64 count = 2;
  Color color = 3;
  map<string, int32> sizes = 4;
  google.protobuf.Timestamp seen = 5;
  optional string note = 6;
  oneof kind { string a = 7; bool b = 8; }
  repeated Thing children = 9;
  bytes blob = 10;
  double ratio = 11;
  uint32 small = 12;
}
message PutThingRequest { string id = 1; Thing thing = 2; }
"""


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("openapi")
    (tmp / "checkout" / "v1").mkdir(parents=True)
    (tmp / "checkout" / "v1" / "thing.proto").write_text(SAMPLE)
    includes = [f"-I{tmp}", f"-I{_googleapis_include()}", f"-I{pathlib.Path(protoc.__file__).parent / '_proto'}"]
    assert protoc.main(["protoc", *includes, "--include_imports", "--include_source_info",
                        f"--descriptor_set_out={tmp / 'set.pb'}", "checkout/v1/thing.proto"]) == 0
    return openapi.build(openapi.load(tmp / "set.pb"))


def test_proto3_json_mapping_of_every_kind_of_field(sample):
    thing = sample["components"]["schemas"]["Thing"]
    props = thing["properties"]
    assert props["count"] == {"type": "string", "format": "int64", "pattern": r"^-?[0-9]+$"}  # 64-bit: a string
    assert props["color"] == {"type": "string", "enum": ["COLOR_UNSPECIFIED", "RED"]}  # enums by name
    assert props["sizes"]["type"] == "object" and props["sizes"]["additionalProperties"]["format"] == "int32"
    assert props["seen"] == {"type": "string", "format": "date-time"}
    assert props["children"] == {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}  # recursive
    assert props["blob"]["contentEncoding"] == "base64" and props["ratio"] == {"type": "number"}
    assert props["small"]["minimum"] == 0
    assert props["id"]["description"] == "the id"
    # printed when zero: scalars, enums, maps, lists; not a message, an optional or a oneof member
    assert set(thing["required"]) == {"id", "count", "color", "sizes", "children", "blob", "ratio", "small"}


def test_query_parameters_body_fields_bindings_and_files(sample):
    paths = sample["paths"]
    get = paths["/api/v1/things/{id}"]["get"]
    query = {p["name"]: p for p in get["parameters"] if p["in"] == "query"}
    assert set(query) == {"filter.owner", "filter.tags", "since"}  # no map; the path field is not a query parameter
    assert query["filter.tags"]["schema"]["type"] == "array" and query["filter.tags"]["explode"] is True
    assert get["description"] == "Reads a thing." and sample["tags"][0]["description"] == "Things, for the test."
    put = paths["/api/v1/things/{id}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ThingInput"}
    assert [p["name"] for p in put["parameters"]] == ["id"]  # body "thing": the rest (id) is the path's
    post = paths["/api/v1/things"]["post"]
    assert post["operationId"] == "ThingService_PutThing_post"  # an additional binding
    assert set(post["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1:]) == {"PutThingRequest"}
    photo = paths["/api/v1/things/{id}/photo"]["get"]["responses"]["200"]["content"]
    assert list(photo) == ["application/octet-stream"]


def test_vendored_swagger_ui_is_the_pinned_wheels():
    source = vendor_swagger_ui.wheel_static_dir()
    for name in vendor_swagger_ui.VENDORED:
        assert (vendor_swagger_ui.DOCS_DIR / name).read_bytes() == (source / name).read_bytes(), \
            f"web/docs/{name} differs from swagger-ui-py's: run `python -m tools.vendor_swagger_ui`"
    edge_config.check_docs_files()
