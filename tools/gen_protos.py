"""Generate Python stubs, the Envoy descriptor set and the OpenAPI document from proto/ into an
output folder.

`make gen` writes into gen/; the staleness test writes into a temporary folder and compares.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import grpc_tools
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
DESCRIPTOR_NAME = "checkout.pb"
# Envoy prints error details only when these are in the descriptor set.
EXTRA_FOR_ENVOY = ["google/rpc/status.proto", "google/rpc/error_details.proto"]


def _googleapis_include() -> pathlib.Path:
    import google.api.annotations_pb2 as annotations

    return pathlib.Path(annotations.__file__).resolve().parent.parent.parent


def generate(out_dir: pathlib.Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    includes = [
        f"-I{PROTO_DIR}",
        f"-I{_googleapis_include()}",
        f"-I{pathlib.Path(grpc_tools.__file__).parent / '_proto'}",
    ]
    plugin_dir = pathlib.Path(sys.executable).parent  # mypy-protobuf's plugins live beside python
    stubs = [
        "grpc_tools.protoc",
        *includes,
        f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *sources,
    ]
    descriptor = [
        "grpc_tools.protoc",
        *includes,
        "--include_imports",
        f"--descriptor_set_out={out_dir / DESCRIPTOR_NAME}",
        *sources,
        *EXTRA_FOR_ENVOY,
    ]
    for args in (stubs, descriptor):
        if protoc.main(args) != 0:
            sys.exit(f"protoc failed: {' '.join(args)}")
    from tools import openapi  # after protoc: it reads the descriptor set just written

    with tempfile.TemporaryDirectory() as scratch:
        # our own files' comments (source info) for the document's descriptions, kept out of
        # checkout.pb, which would grow fivefold with the imported files' comments
        commented = pathlib.Path(scratch) / "commented.pb"
        if protoc.main(["grpc_tools.protoc", *includes, "--include_source_info", f"--descriptor_set_out={commented}", *sources]) != 0:
            sys.exit("protoc failed: the descriptor set with source info")
        openapi.write(out_dir, commented)


if __name__ == "__main__":
    # run as a script, sys.path[0] is tools/ (whose token.py would shadow the standard library's):
    # this checkout's root instead, so its tools/ and common/ are imported, not an installed copy
    sys.path[0] = str(ROOT)
    generate(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "gen")
