"""The OpenAPI 3.1 document of the REST edge, generated from the descriptor set.

    build(files, commented) -> dict   the document, from a FileDescriptorSet, the same files with
                                      source info (their comments become descriptions) and
                                      common/errors.py (the error codes)
    write(out_dir, commented)         out_dir/openapi.json from out_dir/checkout.pb (`make gen`,
                                      tools/gen_protos.py, calls it)

Every `google.api.http` rule of package checkout.v1 is an operation. Schemas are the JSON the edge
really prints (edge/config.py's transcoder options): proto field names (snake_case), every
primitive and repeated field present even when zero (so responses list them as required), an
unset message field left out, 64-bit integers as strings, enums by name. Requests list nothing as
required (proto3 has no required fields; the services say what is missing). Fields that
neither the path nor the body binds are query parameters (GET and DELETE routes: every non-path
field); `body: "*"` takes the rest of the message as the JSON body, `body: "<field>"` that
field. A `google.api.HttpBody` request is the raw body (the webhooks: the signature covers the
exact bytes); an HttpBody answer is a file (the invoice and credit notes: PDF).

What the descriptor set cannot say is in the tables below: who may call an RPC (bearer token
required, accepted, or not used), which take an Idempotency-Key, the webhooks' signature headers,
the media type of a file answer and the links between operations.
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from common.errors import ErrorCode

PACKAGE = "checkout.v1"
DESCRIPTOR_NAME = "checkout.pb"
DOCUMENT_NAME = "openapi.json"
TITLE = "Internship checkout API"
VERSION = "1"

F = descriptor_pb2.FieldDescriptorProto
_INT32 = {F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32}
_UINT32 = {F.TYPE_UINT32, F.TYPE_FIXED32}
_INT64 = {F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64, F.TYPE_UINT64, F.TYPE_FIXED64}
HTTP_BODY = ".google.api.HttpBody"

# Well-known types as the transcoder prints them (the proto3 JSON mapping).
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    ".google.protobuf.FieldMask": {"type": "string"},
    ".google.protobuf.Struct": {"type": "object"},
    ".google.protobuf.Value": {},
    ".google.protobuf.ListValue": {"type": "array"},
    ".google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    ".google.protobuf.Any": {"type": "object", "required": ["@type"], "properties": {"@type": {"type": "string"}}},
    ".google.protobuf.StringValue": {"type": ["string", "null"]},
    ".google.protobuf.BytesValue": {"type": ["string", "null"], "contentEncoding": "base64"},
    ".google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    ".google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    ".google.protobuf.UInt32Value": {"type": ["integer", "null"], "format": "int32"},
    ".google.protobuf.Int64Value": {"type": ["string", "null"], "format": "int64"},
    ".google.protobuf.UInt64Value": {"type": ["string", "null"], "format": "int64"},
    ".google.protobuf.FloatValue": {"type": ["number", "null"]},
    ".google.protobuf.DoubleValue": {"type": ["number", "null"]},
}

# -- what the descriptor set cannot say --------------------------------------------------------
# Who may call an RPC ("Service.Method"). Not listed: a bearer token is accepted (a guest may
# call; a user's token makes the caller that user). Routes under ADMIN_PREFIX need a token with
# the admin role. Whatever the route, a token that is sent must be valid (else 401).
BEARER_REQUIRED = frozenset({
    "OrderService.CreateOrder", "OrderService.GetOrder", "OrderService.CreatePaymentAttempt",
    "OrderService.GetInvoice", "OrderService.GetCreditNote",
    "PaymentService.GetPayment", "PaymentService.VerifyPayment",
    "EnrollmentService.ListEnrollments", "CartService.LoginToCart",
})
BEARER_UNUSED = frozenset({
    "CatalogService.ListInternships", "CatalogService.GetSale", "CatalogService.Ping",
    "PaymentService.RazorpayWebhook", "PaymentService.StripeWebhook",
})
ADMIN_PREFIX = "/api/v1/admin/"
IDEMPOTENT = frozenset({"OrderService.CreateOrder", "RefundService.CreateRefund"})
# (name, required, description) of the headers a webhook's signature travels in
WEBHOOK_HEADERS: dict[str, list[tuple[str, bool, str]]] = {
    "PaymentService.RazorpayWebhook": [
        ("X-Razorpay-Signature", True, "hex HMAC-SHA256 of the raw body with RAZORPAY_WEBHOOK_SECRET"),
        ("X-Razorpay-Event-Id", False, "the event's id, the same on every retry of one event"),
    ],
    "PaymentService.StripeWebhook": [
        ("Stripe-Signature", True, "`t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\" with STRIPE_WEBHOOK_SECRET>`"),
    ],
}
FILE_TYPES = {"OrderService.GetInvoice": "application/pdf", "OrderService.GetCreditNote": "application/pdf"}
# OpenAPI links (stateful testing, and a reader's "what next"): from an operation's 200 answer,
# target operation -> {parameter or "body.<field>": response field}.
LINKS: dict[str, dict[str, dict[str, str]]] = {
    "CartService.CreateCart": {
        "CartService.GetCart": {"token": "token"},
        "CartService.AddItem": {"token": "token"},
        "CartService.ListDiscounts": {"token": "token"},
        "CartService.ApplyCoupon": {"token": "token"},
        "CartService.CheckCartAuth": {"token": "token"},
        "CartService.EstimateCart": {"body.cart_token": "token"},
        "OrderService.CreateOrder": {"body.cart_token": "token"},
    },
    "OrderService.CreateOrder": {
        "OrderService.GetOrder": {"order_token": "order_token"},
        "OrderService.GetInvoice": {"order_token": "order_token"},
        "OrderService.CreatePaymentAttempt": {"order_token": "order_token"},
        "PaymentService.GetPayment": {"payment_token": "payment/payment_token"},
    },
}
# What the edge itself may answer to any operation: 400 (malformed JSON, a wrong type, a refused
# query parameter), 429 (rate limit), 503 (the service down: 4001, retryable).
_EDGE_STATUSES = (400, 429, 503)


def _operation_key(service: str, method: str) -> str:
    return f"{service.rsplit('.', 1)[-1]}.{method}"


def _operation_id(key: str) -> str:
    return key.replace(".", "_")


class _Comments:
    """Leading and trailing comments by descriptor path (source info, when the set has it)."""

    def __init__(self, files: descriptor_pb2.FileDescriptorSet | None) -> None:
        self._by_file: dict[str, dict[tuple[int, ...], str]] = {}
        if files is None:
            return
        for f in files.file:
            found = {}
            for location in f.source_code_info.location:
                text = " ".join(part.strip() for part in (location.leading_comments, location.trailing_comments) if part.strip())
                if text:
                    found[tuple(location.path)] = " ".join(line.strip() for line in text.splitlines() if line.strip())
            self._by_file[f.name] = found

    def get(self, file: str, *path: int) -> str:
        return self._by_file.get(file, {}).get(path, "")


class _Builder:
    def __init__(self, files: descriptor_pb2.FileDescriptorSet, commented: descriptor_pb2.FileDescriptorSet | None) -> None:
        self.comments = _Comments(commented if commented is not None else files)
        self.messages: dict[str, tuple[str, tuple[int, ...], descriptor_pb2.DescriptorProto]] = {}
        self.enums: dict[str, tuple[str, tuple[int, ...], descriptor_pb2.EnumDescriptorProto]] = {}
        for f in files.file:
            for i, message in enumerate(f.message_type):
                self._index_message(f.name, f".{f.package}" if f.package else "", message, (4, i))
            for i, enum in enumerate(f.enum_type):
                self.enums[f".{f.package}.{enum.name}"] = (f.name, (5, i), enum)
        self.files = files
        self.schemas: dict[str, dict[str, Any]] = {}  # component name -> schema
        self._names: dict[tuple[str, bool], str] = {}  # (message, output) -> component name
        self._used: set[tuple[str, bool]] = set()  # (message, output) reachable from an operation

    def _index_message(self, file: str, scope: str, message: descriptor_pb2.DescriptorProto, path: tuple[int, ...]) -> None:
        full = f"{scope}.{message.name}"
        self.messages[full] = (file, path, message)
        for i, nested in enumerate(message.nested_type):
            self._index_message(file, full, nested, (*path, 3, i))
        for i, enum in enumerate(message.enum_type):
            self.enums[f"{full}.{enum.name}"] = (file, (*path, 4, i), enum)

    # -- schemas ----------------------------------------------------------------------------------
    def _is_map(self, field: descriptor_pb2.FieldDescriptorProto) -> bool:
        entry = self.messages.get(field.type_name)
        return field.label == F.LABEL_REPEATED and entry is not None and entry[2].options.map_entry

    def _scalar(self, field: descriptor_pb2.FieldDescriptorProto, output: bool) -> dict[str, Any]:
        kind = field.type
        if kind == F.TYPE_STRING:
            return {"type": "string"}
        if kind == F.TYPE_BOOL:
            return {"type": "boolean"}
        if kind in _INT32:
            return {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
        if kind in _UINT32:
            return {"type": "integer", "format": "int32", "minimum": 0, "maximum": 2**32 - 1}
        if kind in _INT64:
            return {"type": "string", "format": "int64", "pattern": r"^-?[0-9]+$"}
        if kind in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
            return {"type": "number"}
        if kind == F.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        if kind == F.TYPE_ENUM:
            _, _, enum = self.enums[field.type_name]
            return {"type": "string", "enum": [value.name for value in enum.value]}
        if field.type_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[field.type_name])
        return {"$ref": f"#/components/schemas/{self.component(field.type_name, output)}"}

    def field_schema(self, field: descriptor_pb2.FieldDescriptorProto, output: bool) -> dict[str, Any]:
        if self._is_map(field):
            _, _, entry = self.messages[field.type_name]
            return {"type": "object", "additionalProperties": self._scalar(entry.field[1], output)}
        one = self._scalar(field, output)
        if field.label == F.LABEL_REPEATED:
            return {"type": "array", "items": one}
        return one

    def reach(self, type_name: str, output: bool) -> None:
        """Note a message (and the messages in it) as used in a response or a request."""
        if type_name in _WELL_KNOWN or type_name == HTTP_BODY or type_name not in self.messages or (type_name, output) in self._used:
            return
        self._used.add((type_name, output))
        for field in self.messages[type_name][2].field:
            if field.type == F.TYPE_MESSAGE:
                self.reach(field.type_name, output)

    def component(self, type_name: str, output: bool) -> str:
        """The component name of a message as a response (every printed field required) or a
        request (nothing required). A message used both ways has a second component, `<name>Input`."""
        key = (type_name, output)
        if key in self._names:
            return self._names[key]
        short = type_name.rsplit(".", 1)[-1]
        name = short if output or (type_name, True) not in self._used else f"{short}Input"
        if name in self.schemas:
            raise ValueError(f"two messages would share the schema name {name!r}: rename one")
        self._names[key] = name
        self.schemas[name] = {}  # reserved: a recursive message refers to itself
        self.schemas[name] = self.message_schema(type_name, output)
        return name

    def message_schema(self, type_name: str, output: bool, *, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
        file, path, message = self.messages[type_name]
        properties: dict[str, Any] = {}
        required: list[str] = []
        for i, field in enumerate(message.field):
            if field.name in leave_out:
                continue
            one = self.field_schema(field, output)
            text = self.comments.get(file, *path, 2, i)
            if text:
                one = {**one, "description": text}
            properties[field.name] = one
            # printed when zero (always_print_primitive_fields): all but messages and oneof members
            # (a proto3 `optional` field is one of a synthetic oneof)
            printed_when_zero = field.type != F.TYPE_MESSAGE or field.label == F.LABEL_REPEATED
            if output and printed_when_zero and not field.HasField("oneof_index"):
                required.append(field.name)
        schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            schema["required"] = required
        text = self.comments.get(file, *path)
        if text:
            schema["description"] = text
        return schema

    def query_parameters(self, type_name: str, prefix: str, skip: set[str], seen: tuple[str, ...]) -> list[dict[str, Any]]:
        """The transcoder's query parameters: scalar leaves (and repeated scalars) by dotted path."""
        file, path, message = self.messages[type_name]
        params: list[dict[str, Any]] = []
        for i, field in enumerate(message.field):
            name = f"{prefix}{field.name}"
            if name in skip or self._is_map(field):
                continue
            if field.type == F.TYPE_MESSAGE and field.type_name not in _WELL_KNOWN:
                if field.label == F.LABEL_REPEATED or field.type_name in seen:
                    continue
                params += self.query_parameters(field.type_name, f"{name}.", skip, (*seen, field.type_name))
                continue
            param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": self.field_schema(field, False)}
            if field.label == F.LABEL_REPEATED:
                param.update(style="form", explode=True)
            text = self.comments.get(file, *path, 2, i)
            if text:
                param["description"] = text
            params.append(param)
        return params


_TEMPLATE_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")


def _http_rules(rule: Any) -> list[tuple[str, str, str]]:
    """(verb, template, body) of a google.api.HttpRule and its additional bindings."""
    out = []
    for one in (rule, *rule.additional_bindings):
        kind = one.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            out.append((one.custom.kind.lower(), one.custom.path, one.body))
        else:
            out.append((kind, getattr(one, kind), one.body))
    return out


def _humanize(method: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", method).split()
    return " ".join([words[0], *(w.lower() for w in words[1:])]) if words else method


def _error_responses() -> dict[str, Any]:
    """One response per HTTP status of the catalog, each listing its codes."""
    by_status: dict[int, list[str]] = {}
    for member in ErrorCode:
        spec = member.spec
        retry = " (retryable)" if spec.retryable else ""
        by_status.setdefault(spec.http_status, []).append(f"`{spec.code}` {spec.message}{retry}")
    return {
        str(status): {
            "description": "Error envelope; codes: " + "; ".join(codes),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
        }
        for status, codes in sorted(by_status.items())
    }


def _envelope_schema() -> dict[str, Any]:
    codes = sorted({member.spec.code for member in ErrorCode})
    return {
        "type": "object",
        "description": "Every error, whatever raised it (a service, the edge, Envoy itself), in one shape. "
                       "`status` is the HTTP status of the response.",
        "required": ["status", "success", "error"],
        "additionalProperties": False,
        "properties": {
            "status": {"type": "integer"},
            "success": {"const": False},
            "error": {
                "type": "object",
                "required": ["code", "message", "validation_messages", "correlation_id", "retryable", "suggested_action"],
                "additionalProperties": False,
                "properties": {
                    "code": {"type": "integer", "enum": codes, "description": "stable error code (see the table in the description)"},
                    "message": {"type": "string"},
                    "validation_messages": {"type": "array", "items": {"type": "string"},
                                            "description": "one `field: problem` per bad field (code 1000)"},
                    "correlation_id": {"type": "string", "description": "as the `x-correlation-id` response header"},
                    "retryable": {"type": "boolean"},
                    "suggested_action": {"type": "string"},
                },
            },
        },
    }


def _code_table() -> str:
    rows = ["| code | meaning | HTTP | retryable |", "|---|---|---|---|"]
    for member in sorted(ErrorCode, key=lambda m: m.spec.code):
        spec = member.spec
        rows.append(f"| {spec.code} | {spec.message} | {spec.http_status} | {'yes' if spec.retryable else 'no'} |")
    return "\n".join(rows)


_DESCRIPTION = """\
The REST surface of the checkout, as the edge (Envoy, transcoding REST to the gRPC services)
serves it. Generated from `proto/` (the `google.api.http` annotations) by `make gen`; the
contract in words is docs/API.md.

**JSON**: field names are the proto field names (snake_case); every string, number, boolean and
list is printed even when empty or zero; money is a decimal string with two places beside its
`currency`; timestamps are RFC 3339 in UTC; tokens are UUIDs. Query parameters never set a
field the path or the body binds (400, 1000), in any spelling.

**Auth**: `Authorization: Bearer <JWT>` (HS256, `iss` interns-platform, `aud` checkout, `sub`
the user id, optional `roles` with `admin` for /api/v1/admin/). In development `make token
[ROLE=admin] [USER=<uuid, e-mail or name>]` prints one. A token that is sent must be valid
(else 401, 1101), on every route.

**Idempotency**: `POST /api/v1/order` (and the admin refunds) take an `Idempotency-Key` header:
the same key and body replay the first answer; the same key with another body is 409 (2005).

**Errors**: every error is the envelope below, with the HTTP status of its code:

{codes}

Every response carries `x-correlation-id` (the request's own, or a new one).
"""


def build(files: descriptor_pb2.FileDescriptorSet, commented: descriptor_pb2.FileDescriptorSet | None = None,
          package: str = PACKAGE) -> dict[str, Any]:
    """`commented`: the same files with source info (else `files`' own, if it has any)."""
    builder = _Builder(files, commented)
    paths: dict[str, dict[str, Any]] = {}
    tags: list[dict[str, str]] = []
    operations: dict[str, tuple[str, str]] = {}  # key -> (path, verb)
    for f in files.file:
        if f.package == package:
            for service in f.service:
                for method in service.method:
                    builder.reach(method.input_type, False)
                    builder.reach(method.output_type, True)
    for f in files.file:
        if f.package != package:
            continue
        for si, service in enumerate(f.service):
            tag = {"name": service.name}
            text = builder.comments.get(f.name, 6, si) or builder.comments.get(f.name, 12)
            if text:
                tag["description"] = text
            tags.append(tag)
            for mi, method in enumerate(service.method):
                key = _operation_key(f"{f.package}.{service.name}", method.name)
                for verb, template, body in _http_rules(method.options.Extensions[annotations_pb2.http]):
                    path, operation = _operation(builder, f.name, (6, si, 2, mi), service.name, method, key, verb, template, body)
                    if key in operations:
                        operation["operationId"] = f"{_operation_id(key)}_{verb}"
                    else:
                        operations[key] = (path, verb)
                    paths.setdefault(path, {})[verb] = operation
    _add_links(paths, operations)
    schemas = {"ErrorEnvelope": _envelope_schema(), **dict(sorted(builder.schemas.items()))}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": _DESCRIPTION.format(codes=_code_table()),
        },
        "tags": tags,
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "responses": _error_responses(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "HS256 JWT: `sub` user id (UUID), `iss` interns-platform, `aud` checkout, `exp`, "
                                   "optional `roles` (`admin` for the admin API). Development: `make token`.",
                }
            },
        },
    }


def _operation(builder: _Builder, file: str, path: tuple[int, ...], service: str, method: descriptor_pb2.MethodDescriptorProto,
               key: str, verb: str, template: str, body: str) -> tuple[str, dict[str, Any]]:
    path_fields = _TEMPLATE_VARIABLE.findall(template)
    openapi_path = _TEMPLATE_VARIABLE.sub(lambda m: "{" + m.group(1) + "}", template)
    operation: dict[str, Any] = {"tags": [service], "operationId": _operation_id(key), "summary": _humanize(method.name)}
    text = builder.comments.get(file, *path)
    if text:
        operation["description"] = text
    parameters: list[dict[str, Any]] = []
    input_type = method.input_type
    for name in path_fields:
        parameters.append({"name": name, "in": "path", "required": True, "schema": _path_field_schema(builder, input_type, name)})
    admin = template.startswith(ADMIN_PREFIX)
    if key in IDEMPOTENT:
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
                           "description": "recommended: the same key and body replay the first answer; the same key "
                                          "with another body is 409 (2005)"})
    for name, required, description in WEBHOOK_HEADERS.get(key, []):
        parameters.append({"name": name, "in": "header", "required": required, "schema": {"type": "string"}, "description": description})
    raw_body = input_type == HTTP_BODY
    if body != "*" and not raw_body and input_type not in _WELL_KNOWN:
        # what neither the path nor the body binds may come in the query string
        bound = {name.split(".")[0] for name in path_fields} | ({body} if body else set())
        parameters += builder.query_parameters(input_type, "", bound, (input_type,))
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = _request_body(builder, input_type, body, tuple(name.split(".")[0] for name in path_fields))
    operation["responses"] = _responses(builder, key, method.output_type, bool(body), bool(path_fields), admin)
    if admin:
        operation["security"] = [{"bearer": []}]
        operation["description"] = (operation.get("description", "") + " Role `admin` required.").strip()
    elif key in BEARER_REQUIRED:
        operation["security"] = [{"bearer": []}]
    elif key in BEARER_UNUSED:
        operation["security"] = []
    else:
        operation["security"] = [{}, {"bearer": []}]
    return openapi_path, operation


def _path_field_schema(builder: _Builder, type_name: str, dotted: str) -> dict[str, Any]:
    *parents, leaf = dotted.split(".")
    for name in parents:
        _, _, message = builder.messages[type_name]
        type_name = next(field.type_name for field in message.field if field.name == name)
    _, _, message = builder.messages[type_name]
    field = next(field for field in message.field if field.name == leaf)
    return builder.field_schema(field, False)


def _request_body(builder: _Builder, input_type: str, body: str, path_fields: tuple[str, ...]) -> dict[str, Any]:
    if input_type == HTTP_BODY:
        return {"required": True, "description": "the gateway's event, as it sent it: the signature covers these exact bytes",
                "content": {"application/json": {"schema": {"type": "object"}}}}
    if body == "*":
        schema = builder.message_schema(input_type, False, leave_out=path_fields) if path_fields else \
            {"$ref": f"#/components/schemas/{builder.component(input_type, False)}"}
    else:
        _, _, message = builder.messages[input_type]
        schema = builder.field_schema(next(field for field in message.field if field.name == body), False)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _responses(builder: _Builder, key: str, output_type: str, has_body: bool, has_path: bool, admin: bool) -> dict[str, Any]:
    if output_type == HTTP_BODY:
        media = FILE_TYPES.get(key, "application/octet-stream")
        ok: dict[str, Any] = {"description": "the document", "content": {media: {"schema": {"type": "string", "contentMediaType": media}}}}
    elif output_type in _WELL_KNOWN:
        ok = {"description": "OK", "content": {"application/json": {"schema": dict(_WELL_KNOWN[output_type])}}}
    else:
        ok = {"description": "OK", "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{builder.component(output_type, True)}"}}}}
    statuses = set(_EDGE_STATUSES)
    if key not in BEARER_UNUSED or admin:
        statuses.add(401)
    if admin or key not in BEARER_UNUSED:
        statuses.add(403)
    if has_path:
        statuses.add(404)
    if has_body:
        statuses.add(413)
    responses: dict[str, Any] = {"200": ok}
    for status in sorted(statuses):
        responses[str(status)] = {"$ref": f"#/components/responses/{status}"}
    responses["default"] = {"description": "any other error, in the envelope (the statuses and codes are in the description above)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
    return responses


def _add_links(paths: dict[str, dict[str, Any]], operations: dict[str, tuple[str, str]]) -> None:
    for source, targets in LINKS.items():
        if source not in operations:
            continue
        path, verb = operations[source]
        links: dict[str, Any] = {}
        for target, bindings in targets.items():
            if target not in operations:
                continue
            link: dict[str, Any] = {"operationId": _operation_id(target)}
            parameters = {name: f"$response.body#/{field}" for name, field in bindings.items() if not name.startswith("body.")}
            body = {name[5:]: f"$response.body#/{field}" for name, field in bindings.items() if name.startswith("body.")}
            if parameters:
                link["parameters"] = parameters
            if body:
                link["requestBody"] = body
            links[_operation_id(target)] = link
        if links:
            paths[path][verb]["responses"]["200"]["links"] = links


def load(path: pathlib.Path) -> descriptor_pb2.FileDescriptorSet:
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(path.read_bytes())
    return files


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def write(out_dir: pathlib.Path, commented: pathlib.Path | None = None) -> pathlib.Path:
    target = out_dir / DOCUMENT_NAME
    document = build(load(out_dir / DESCRIPTOR_NAME), load(commented) if commented else None)
    target.write_text(dumps(document), encoding="utf-8")
    return target
