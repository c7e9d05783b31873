"""The edge's TLS: HTTPS for clients, mutual TLS to the services, the plain port's redirect.

    downstream_transport_socket(settings)  the HTTPS listener's TLS 1.2+ with modern AEAD
                                           ciphers, ALPN h2 then http/1.1 (EDGE_TLS_*)
    upstream_transport_socket(settings, cluster)
                                           TLS to a service with the edge's own certificate
                                           (spiffe://interns/edge), accepting only a server
                                           certificate that names spiffe://interns/<cluster>_svc
    redirect_virtual_hosts(settings)       EDGE_REQUIRE_TLS: every request on the plain port is a
                                           308 to the same URL over HTTPS, except /healthz and
                                           /readyz (answered before routing by their filters)
"""

from __future__ import annotations

from edge.settings import EdgeSettings

_DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
_UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
SPIFFE_PREFIX = "spiffe://interns/"

# TLS 1.2's forward-secret AEAD suites (TLS 1.3 has only such suites; BoringSSL picks them itself)
CIPHER_SUITES = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)
TLS_PARAMS = {
    "tls_minimum_protocol_version": "TLSv1_2",
    "tls_maximum_protocol_version": "TLSv1_3",
    "cipher_suites": list(CIPHER_SUITES),
}
ALPN = ("h2", "http/1.1")


def _certificate(cert_file: str, key_file: str) -> dict:
    return {"certificate_chain": {"filename": cert_file}, "private_key": {"filename": key_file}}


def downstream_transport_socket(settings: EdgeSettings) -> dict:
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": _DOWNSTREAM,
            "common_tls_context": {
                "tls_params": TLS_PARAMS,
                "alpn_protocols": list(ALPN),
                "tls_certificates": [_certificate(settings.tls_cert_file, settings.tls_key_file)],
            },
        },
    }


def upstream_transport_socket(settings: EdgeSettings, cluster: str) -> dict | None:
    """None when the services speak plaintext (GRPC_PLAINTEXT)."""
    upstream = settings.upstream_tls
    if upstream is None:
        return None
    identity = f"{SPIFFE_PREFIX}{cluster}_svc"
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": _UPSTREAM,
            "sni": f"{cluster}-svc",  # its host name (common/tls.server_name)
            "common_tls_context": {
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
                "alpn_protocols": ["h2"],
                "tls_certificates": [_certificate(upstream.cert_file, upstream.key_file)],
                "validation_context": {
                    "trusted_ca": {"filename": upstream.ca_file},
                    "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": identity}}],
                },
            },
        },
    }


def redirect_virtual_hosts(settings: EdgeSettings) -> list[dict]:
    port = "" if settings.tls_port == 443 else settings.tls_port
    redirect: dict[str, object] = {"https_redirect": True, "response_code": "PERMANENT_REDIRECT"}
    if port:
        redirect["port_redirect"] = port
    return [{
        "name": "to_https",
        "domains": ["*"],
        "routes": [{"name": "to_https", "match": {"prefix": "/"}, "redirect": redirect}],
    }]
