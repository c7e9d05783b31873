"""Mutual TLS between the services: credentials from settings' files, and the caller's identity.

Every process has one identity, `spiffe://interns/<name>` (cart_svc, order_svc, payment_svc,
enrollment_svc, edge, developer), the only URI SAN of its certificate (TLS_CERT_FILE, TLS_KEY_FILE),
issued by the internal CA. TLS_CA_FILE is the trust bundle: it may hold several CAs, the old and
the new one during a rollover (docs/SECURITY.md). A gRPC server asks every client for a
certificate from that bundle; a client checks that the server's certificate names the service it
meant to reach (its DNS SAN `<service>-svc`). GRPC_PLAINTEXT=1 turns all of this off, for development and
tests only (production refuses it: common/settings.py).
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import grpc

from common.settings import Settings

TRUST_DOMAIN = "interns"
_PREFIX = f"spiffe://{TRUST_DOMAIN}/"


def spiffe_id(name: str) -> str:
    return _PREFIX + name


def server_name(service: str) -> str:
    """The host name a service's certificate must carry for its clients: `cart-svc` (a DNS name,
    as the Kubernetes Service's; the identity itself is the URI SAN, spiffe://interns/cart_svc)."""
    return f"{service}-svc"


def identity_name(spiffe: str) -> str:
    """`spiffe://interns/order_svc` -> `order_svc` ("" for another trust domain)."""
    return spiffe.removeprefix(_PREFIX) if spiffe.startswith(_PREFIX) else ""


class TlsNotConfigured(SystemExit):
    pass


def _read(settings: Settings) -> tuple[bytes, bytes, bytes]:
    names = {"TLS_CA_FILE": settings.tls_ca_file, "TLS_CERT_FILE": settings.tls_cert_file,
             "TLS_KEY_FILE": settings.tls_key_file}
    unset = [name for name, value in names.items() if not value]
    if unset:
        raise TlsNotConfigured(f"gRPC needs mutual TLS: set {', '.join(unset)} (files of the internal CA), "
                               "or GRPC_PLAINTEXT=1 for development only")
    contents = []
    for name, value in names.items():
        try:
            contents.append(pathlib.Path(value).read_bytes())
        except OSError as error:
            raise TlsNotConfigured(f"setting {name}: cannot read {value}: {error.strerror}") from None
    return contents[0], contents[1], contents[2]


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """None in plaintext mode; else TLS 1.2+ that requires a client certificate from the bundle."""
    if settings.grpc_plaintext:
        return None
    ca, cert, key = _read(settings)
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    if settings.grpc_plaintext:
        return None
    ca, cert, key = _read(settings)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def channel(settings: Settings, address: str, service: str,
            options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A channel to `service` (cart, order, payment, enrollment) at `address`, presenting this
    process's certificate and accepting only a server certificate that names `<service>-svc`."""
    credentials = channel_credentials(settings)
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(address, credentials,
                                   options=[("grpc.ssl_target_name_override", server_name(service)), *options])


def peer_identity(context: grpc.aio.ServicerContext) -> str:
    """The caller's SPIFFE id from its verified certificate ("" without one: plaintext)."""
    auth = context.auth_context() or {}
    values = auth.get("peer_spiffe_id") or []
    return values[0].decode() if values else ""
