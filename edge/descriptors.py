"""What the edge learns from the descriptor set (gen/checkout.pb): services and their HTTP rules."""

from __future__ import annotations

import dataclasses
import pathlib
import re

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

PACKAGE = "checkout.v1"
_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")


@dataclasses.dataclass(frozen=True)
class HttpRule:
    service: str  # full name, e.g. checkout.v1.CartService
    method: str  # e.g. GetCart
    verb: str  # GET, POST, PUT, DELETE, PATCH
    template: str  # e.g. /api/v1/cart/{token}
    body: str  # "", "*" or a field name
    request_fields: tuple[str, ...] = ()  # the request message's top-level fields

    @property
    def path_fields(self) -> tuple[str, ...]:
        return tuple(_VARIABLE.findall(self.template))

    @property
    def bound_fields(self) -> tuple[str, ...]:
        """The top-level fields the path or the body sets: a query parameter must not name them."""
        from_path = dict.fromkeys(name.split(".")[0] for name in self.path_fields)
        if self.body == "*":
            from_body = dict.fromkeys(name for name in self.request_fields if name not in from_path)
        else:
            from_body = dict.fromkeys([self.body.split(".")[0]] if self.body else [])
        return tuple({**from_path, **from_body})


def load(path: pathlib.Path) -> descriptor_pb2.FileDescriptorSet:
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(path.read_bytes())
    return files


def service_names(files: descriptor_pb2.FileDescriptorSet, package: str = PACKAGE) -> list[str]:
    """Full names of the services in `package`, in descriptor order."""
    return [f"{f.package}.{s.name}" for f in files.file if f.package == package for s in f.service]


def http_rules(files: descriptor_pb2.FileDescriptorSet, package: str = PACKAGE) -> list[HttpRule]:
    rules: list[HttpRule] = []
    fields_of = {f".{f.package}.{message.name}": tuple(field.name for field in message.field)
                 for f in files.file for message in f.message_type}
    for f in files.file:
        if f.package != package:
            continue
        for service in f.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                for one in (rule, *rule.additional_bindings):
                    kind = one.WhichOneof("pattern")
                    if kind is None:
                        continue
                    if kind == "custom":
                        verb, template = one.custom.kind.upper(), one.custom.path
                    else:
                        verb, template = kind.upper(), getattr(one, kind)
                    rules.append(HttpRule(f"{f.package}.{service.name}", method.name, verb, template, one.body,
                                          fields_of.get(method.input_type, ())))
    return rules
