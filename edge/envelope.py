"""The REST error envelope at the edge, generated from the error catalog (common/errors.py).

Two producers of the envelope, fed by the same tables:

* the Lua filter (edge/envelope.lua) reshapes transcoded service errors and anything else with
  status >= 400 that passes through the filter chain;
* `local_reply_config` mappers format Envoy's own local replies (bad JSON, unknown path, 413,
  429, upstream down, /healthz 503) — including the few produced before any filter runs — and
  mark them with a header so the Lua filter leaves them alone.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Sequence

from common.errors import ErrorCode, ErrorSpec
from common.etags import NOT_MODIFIED_METADATA
from edge import descriptors

LUA_TEMPLATE = pathlib.Path(__file__).with_name("envelope.lua")
GENERATED_MARK = "-- @@GENERATED@@"
ENVELOPE_MARKER = "x-edge-envelope"
MAX_CORRELATION_ID = 128  # as common/interceptors.py

# Which catalog entry describes an error that carries nothing but an HTTP status (an Envoy local
# reply, or a gRPC status without a checkout detail). Statuses not listed take the first catalog
# entry with that HTTP status; statuses not in the catalog take GENERIC_CLIENT / GENERIC_SERVER.
_PREFERRED: dict[int, ErrorCode] = {
    400: ErrorCode.VALIDATION_FAILED,
    401: ErrorCode.NOT_AUTHENTICATED,
    403: ErrorCode.NOT_ALLOWED,
    404: ErrorCode.ROUTE_NOT_FOUND,
    409: ErrorCode.ALREADY_EXISTS,
    413: ErrorCode.BODY_TOO_LARGE,
    429: ErrorCode.RATE_LIMITED,
    500: ErrorCode.INTERNAL,
    501: ErrorCode.NOT_IMPLEMENTED,
    502: ErrorCode.GATEWAY_UNAVAILABLE,
    503: ErrorCode.GATEWAY_UNAVAILABLE,
    504: ErrorCode.GATEWAY_UNAVAILABLE,
}
GENERIC_CLIENT = ErrorCode.VALIDATION_FAILED
GENERIC_SERVER = ErrorCode.INTERNAL
# Local replies whose text is worth showing the client in validation_messages (Envoy's JSON
# parse / type errors, unknown query parameters); the catch-all for other 4xx shows it too.
_SHOW_LOCAL_REPLY_BODY = frozenset({400})
REJECT_MARKER = "x-edge-reject"  # request header the Lua filter sets to refuse a request (400)
READYZ_PATH = "/readyz"
READYZ_MARKER = "x-edge-readyz"  # request header the Lua filter sets on /readyz: its 503 keeps its body
NATIVE_GRPC_MARKER = "x-edge-native-grpc"  # request header the Lua filter sets on gRPC requests
NATIVE_GRPC_REFUSED = "this edge serves REST only: call the service's gRPC port for gRPC"


def http_by_code() -> dict[int, int]:
    return {member.spec.code: member.spec.http_status for member in ErrorCode}


def generic_by_http() -> dict[int, ErrorSpec]:
    table: dict[int, ErrorSpec] = {}
    for member in ErrorCode:
        table.setdefault(member.spec.http_status, member.spec)
    for status, member in _PREFERRED.items():
        table[status] = member.spec
    return dict(sorted(table.items()))


# ---------------------------------------------------------------------------------------------
# Lua


def lua_string(text: str) -> str:
    """A Lua string literal (bytes escaped as \\ddd, so any text is safe)."""
    out = ['"']
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03d}")
    out.append('"')
    return "".join(out)


def _json_string(text: str) -> str:
    return json.dumps(text)


def _lua_spec(spec: ErrorSpec) -> str:
    message = lua_string(_json_string(spec.message))
    retryable = lua_string("true" if spec.retryable else "false")
    action = lua_string(_json_string(spec.suggested_action))
    return f"{{ code = {spec.code}, message = {message}, retryable = {retryable}, suggested_action = {action} }}"


def lua_path_pattern(template: str) -> str:
    """A Lua pattern matching the (percent-decoded) paths of a google.api.http template."""
    # {field} binds one segment, {field=<pattern>} binds that pattern's segments
    flat = re.sub(r"\{[^}=]+(?:=([^}]*))?\}", lambda m: m.group(1) or "*", template)
    out = ["^"]
    for segment in flat.strip("/").split("/"):
        out.append("/")
        if segment == "**":
            out.append(".*")
        elif segment == "*":
            out.append("[^/]+")
        else:
            out.append(re.sub(r"([^A-Za-z0-9_])", r"%\1", segment))
    out.append("/?$")
    return "".join(out)


def spelling_key(name: str) -> str:
    """`order_token`, `orderToken` and `OrderToken` alike (the Lua side folds a query name the same way)."""
    return name.replace("_", "").lower()


def lua_path_bindings(rules: list[descriptors.HttpRule]) -> list[str]:
    lines = []
    for rule in rules:
        if not rule.bound_fields:
            continue
        fields = ", ".join(f"[{lua_string(spelling_key(name))}] = {lua_string(name)}" for name in rule.bound_fields)
        lines.append(f"  {{ {lua_string(rule.verb)}, {lua_string(lua_path_pattern(rule.template))}, {{ {fields} }} }},  -- {rule.method}")
    return lines


def lua_tables(security_headers: list[tuple[str, str]], rules: list[descriptors.HttpRule],
               readiness: Sequence[tuple[str, str]] = ()) -> str:
    lines = ["-- Generated by edge/envelope.py from common/errors.py; do not edit here.",
             f"MAX_CORRELATION_ID = {MAX_CORRELATION_ID}",
             "HTTP_BY_CODE = {"]
    for code, status in sorted(http_by_code().items()):
        lines.append(f"  [{code}] = {status},")
    lines.append("}")
    lines.append("-- *_json values are JSON fragments, ready to splice into a body")
    lines.append("GENERIC_BY_HTTP = {")
    for status, spec in generic_by_http().items():
        lines.append(f"  [{status}] = {_lua_spec(spec)},")
    lines.append("}")
    lines.append(f"GENERIC_CLIENT = {_lua_spec(GENERIC_CLIENT.spec)}")
    lines.append(f"GENERIC_SERVER = {_lua_spec(GENERIC_SERVER.spec)}")
    lines.append(f"ENVELOPE_MARKER = {lua_string(ENVELOPE_MARKER)}")
    lines.append(f"NATIVE_GRPC_MARKER = {lua_string(NATIVE_GRPC_MARKER)}")
    lines.append(f"REJECT_MARKER = {lua_string(REJECT_MARKER)}")
    lines.append("-- { verb, pattern of the decoded path, { [spelling key] = field bound by the path or body } }")
    lines.append("PATH_BINDINGS = {")
    lines.extend(lua_path_bindings(rules))
    lines.append("}")
    lines.append(f"NOT_MODIFIED_MARKER = {lua_string(NOT_MODIFIED_METADATA)}")
    lines.append(f"READYZ_PATH = {lua_string(READYZ_PATH)}")
    lines.append(f"READYZ_MARKER = {lua_string(READYZ_MARKER)}")
    lines.append("-- { service, cluster of its metrics port (\"\": none) } asked for /readyz")
    lines.append("READINESS = {")
    for service, cluster in readiness:
        lines.append(f"  {{ {lua_string(service)}, {lua_string(cluster)} }},")
    lines.append("}")
    lines.append("SECURITY_HEADERS = {")
    for name, value in security_headers:
        lines.append(f"  {{ {lua_string(name)}, {lua_string(value)} }},")
    lines.append("}")
    return "\n".join(lines)


def lua_source(security_headers: list[tuple[str, str]], rules: list[descriptors.HttpRule],
               readiness: Sequence[tuple[str, str]] = ()) -> str:
    template = LUA_TEMPLATE.read_text()
    if template.count(GENERATED_MARK) != 1:
        raise RuntimeError(f"{LUA_TEMPLATE} must contain the line {GENERATED_MARK!r} once")
    return template.replace(GENERATED_MARK, lua_tables(security_headers, rules, readiness))


# ---------------------------------------------------------------------------------------------
# local_reply_config


def _status_filter(op: str, status: int) -> dict:
    return {
        "status_code_filter": {
            "comparison": {"op": op, "value": {"default_value": status, "runtime_key": f"edge.local_reply.{op.lower()}_{status}"}}
        }
    }


def _mapper(status_filter: dict, spec: ErrorSpec, status_value: object, show_body: bool | str) -> dict:
    """show_body: False (no validation_messages), True (the reply's text) or a format string."""
    return {
        "filter": status_filter,
        "headers_to_add": [
            {"header": {"key": ENVELOPE_MARKER, "value": "1"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
            {
                "header": {"key": "x-correlation-id", "value": "%REQ(x-correlation-id?x-request-id)%"},
                "append_action": "ADD_IF_ABSENT",
            },
        ],
        "body_format_override": {
            "json_format": {
                "status": status_value,
                "success": False,
                "error": {
                    "code": spec.code,
                    "message": spec.message,
                    "validation_messages": [show_body if isinstance(show_body, str) else "%LOCAL_REPLY_BODY%"] if show_body else [],
                    "correlation_id": "%REQ(x-correlation-id?x-request-id)%",
                    "retryable": spec.retryable,
                    "suggested_action": spec.suggested_action,
                },
            },
            "content_type": "application/json",
        },
    }


def local_reply_config() -> dict:
    refused = {
        "and_filter": {
            "filters": [
                _status_filter("EQ", 400),
                {"header_filter": {"header": {"name": REJECT_MARKER, "present_match": True}}},
            ]
        }
    }
    # /readyz's 503 is the report itself (the Lua filter made it), not an error to wrap
    readyz = {"filter": {"header_filter": {"header": {"name": READYZ_MARKER, "present_match": True}}}}
    mappers = [readyz, _mapper(refused, ErrorCode.VALIDATION_FAILED.spec, 400, f"%REQ({REJECT_MARKER})%")]
    mappers += [
        _mapper(_status_filter("EQ", status), spec, status, status in _SHOW_LOCAL_REPLY_BODY)
        for status, spec in generic_by_http().items()
    ]
    # anything else: keep Envoy's status, generic client / server error
    mappers.append(_mapper(_status_filter("GE", 500), GENERIC_SERVER.spec, "%RESPONSE_CODE%", False))
    mappers.append(_mapper(_status_filter("GE", 400), GENERIC_CLIENT.spec, "%RESPONSE_CODE%", True))
    return {"mappers": mappers}
