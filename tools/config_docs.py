"""docs/CONFIGURATION.md from common/settings.py: `python -m tools.config_docs > docs/CONFIGURATION.md`
(make docs); tests/unit/test_config_docs.py fails when the committed page is stale."""

from __future__ import annotations

from typing import Any

from common.settings import Settings

GROUPS = {
    "servers": "Servers",
    "retention": "Retention (pruning, one process per service at a time)",
    "tracing": "Tracing (OpenTelemetry)",
    "auth": "Identity",
    "rules": "Business rules",
    "invoice": "GST tax invoices",
    "ports": "Ports and addresses",
    "gateways": "Payment gateways",
    "payment": "payment_svc",
    "order": "order_svc",
    "cart": "cart_svc",
    "events": "Events: the outbox relays and the consumers",
    "edge": "The edge (Envoy)",
    "tls": "Mutual TLS between the processes",
    "tests": "Tests only",
}

HEADER = """# Configuration

Every setting is an environment variable, read once per process into one typed model
(`common/settings.py`, pydantic-settings); a value that does not parse stops the process with a
message naming the variable. The defaults point at what `make run` starts; production sets every
secret. This page is generated from the model by `make docs` (a test fails when it is stale).
"""


def _default(value: Any) -> str:
    if isinstance(value, tuple):
        value = ",".join(value)
    if isinstance(value, bool):
        value = "1" if value else "0"
    if value is None:
        return "(derived, see what)"
    text = str(value)
    return f"`{text}`" if text else "(derived, see what)"


def render() -> str:
    lines = [HEADER]
    fields = Settings.model_fields
    for group, title in GROUPS.items():
        lines += ["", f"## {title}", "", "| variable | default | what |", "|---|---|---|"]
        for name, field in fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if extra.get("group") != group:
                continue
            lines.append(f"| `{name.upper()}` | {_default(field.default)} | {field.description or ''} |")
    ungrouped = [name for name, f in fields.items()
                 if not isinstance(f.json_schema_extra, dict) or f.json_schema_extra.get("group") not in GROUPS]
    if ungrouped:
        raise SystemExit(f"settings without a documented group: {ungrouped}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
