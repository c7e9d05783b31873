"""Exit 0 when the gRPC server at ADDRESS reports SERVING (container health checks).

    python -m tools.grpc_health ADDRESS [SERVICE]

Over mutual TLS with this process's certificate (TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE: health
is open to any certificate of the internal CA), unless GRPC_PLAINTEXT is set. With SERVICE (cart,
order, payment, enrollment) the server's certificate must name `<SERVICE>-svc`; without it, the
address itself (a container probing itself at 127.0.0.1: its certificate names 127.0.0.1).
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.settings import load_settings
from common.tls import channel_credentials, server_name


def _channel(address: str, service: str) -> grpc.Channel:
    credentials = channel_credentials(load_settings())
    if credentials is None:
        return grpc.insecure_channel(address)
    options = [("grpc.ssl_target_name_override", server_name(service))] if service else []
    return grpc.secure_channel(address, credentials, options=options)


def main(address: str, service: str = "") -> int:
    with _channel(address, service) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError as error:
            print(f"{address}: {error.code().name}", file=sys.stderr)
            return 1
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]) if len(sys.argv) > 1 else main("127.0.0.1:50051"))
