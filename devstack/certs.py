"""The development internal CA and every certificate `make run` needs, in `.run/certs/`.

Made on first start and reused after; a leaf is issued again when it is missing, expires within
RENEW_BEFORE, or (the edge's) no longer names every host; a new CA re-issues every leaf. Keys are
ECDSA P-256, files mode 0600. Production gets its certificates elsewhere (cert-manager, a mesh):
the services only read files named by settings (docs/SECURITY.md).

    ca.pem, ca-key.pem                 the internal CA (trust bundle of every process)
    edge-https.pem, edge-https-key.pem the edge's HTTPS certificate: localhost, 127.0.0.1,
                                       cart.<EDGE_DOMAIN>, pay.<EDGE_DOMAIN>
    <name>.pem, <name>-key.pem         one client+server certificate per identity (IDENTITIES), its
                                       URI SAN spiffe://interns/<name>
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.settings import SERVICES, load_settings
from common.tls import spiffe_id

CA_DAYS = 5 * 365
LEAF_DAYS = 90
RENEW_BEFORE = datetime.timedelta(days=7)
EDGE_HTTPS = "edge-https"
# Who gets a certificate: each service (client and server), the edge (its upstream client) and a
# developer (grpcurl, `make grpcurl`).
IDENTITIES = (*(f"{service}_svc" for service in SERVICES), "edge", "developer")


@dataclasses.dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


@dataclasses.dataclass(frozen=True)
class CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_ca(name: str = "interns checkout dev internal CA", days: int = CA_DAYS) -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "interns checkout (development)"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CA(cert, key)


def issue(ca: CA, common_name: str, *, dns: Iterable[str] = (), ips: Iterable[str] = (), uris: Iterable[str] = (),
          days: int = LEAF_DAYS) -> tuple[bytes, bytes]:
    """A leaf certificate for TLS clients and servers: (certificate PEM, PKCS#8 key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    names += [x509.UniformResourceIdentifier(uri) for uri in uris]
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def issue_identity(ca: CA, name: str, *, extra_dns: Iterable[str] = ()) -> tuple[bytes, bytes]:
    """`name`'s certificate: URI SAN spiffe://interns/<name> (its identity); DNS `cart-svc` for
    cart_svc (what its clients check: common/tls.server_name, as the Kubernetes Service is named),
    `cart_svc` (its compose host) and localhost, and IP 127.0.0.1 (a probe on its own machine)."""
    return issue(ca, name, dns=(name.replace("_", "-"), name, "localhost", *extra_dns), ips=("127.0.0.1",),
                 uris=(spiffe_id(name),))


def edge_https_names(domain: str) -> tuple[list[str], list[str]]:
    return ["localhost", f"cart.{domain}", f"pay.{domain}"], ["127.0.0.1"]


def write_private(path: Path, data: bytes) -> None:
    """Written whole and renamed into place, never readable by others."""
    partial = path.with_name(path.name + ".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    partial.replace(path)


def _load_ca(directory: Path) -> CA | None:
    try:
        cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca-key.pem").read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return None
    return CA(cert, key)


def _current(cert_path: Path, ca: CA, dns: Iterable[str] = ()) -> bool:
    """Signed by `ca`, not about to expire, and naming every host in `dns`."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    if cert.issuer != ca.cert.subject or cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return False
    try:
        cert.verify_directly_issued_by(ca.cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return set(dns) <= set(names.get_values_for_type(x509.DNSName))


def ensure_dev_certs(directory: Path, domain: str) -> bool:
    """Make what is missing or stale in `directory`; True when the CA is new (to be trusted)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca = _load_ca(directory)
    new = ca is None
    if ca is None:
        ca = new_ca()
        write_private(directory / "ca-key.pem", ca.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        write_private(directory / "ca.pem", ca.pem())
    dns, ips = edge_https_names(domain)
    if not _current(directory / f"{EDGE_HTTPS}.pem", ca, dns):
        _write_pair(directory, EDGE_HTTPS, issue(ca, "checkout edge", dns=dns, ips=ips))
    for name in IDENTITIES:
        if not _current(directory / f"{name}.pem", ca):
            _write_pair(directory, name, issue_identity(ca, name))
    return new


def _write_pair(directory: Path, name: str, pair: tuple[bytes, bytes]) -> None:
    write_private(directory / f"{name}-key.pem", pair[1])
    write_private(directory / f"{name}.pem", pair[0])


def pair(directory: Path, name: str) -> Issued:
    return Issued(directory / f"{name}.pem", directory / f"{name}-key.pem")


def process_env(directory: Path, identity: str) -> dict[str, str]:
    """The TLS_* settings of the process that is `identity` (common/settings.py)."""
    own = pair(directory, identity)
    return {"TLS_CA_FILE": str(directory / "ca.pem"), "TLS_CERT_FILE": str(own.cert), "TLS_KEY_FILE": str(own.key)}


def edge_env(directory: Path) -> dict[str, str]:
    https = pair(directory, EDGE_HTTPS)
    return {**process_env(directory, "edge"), "EDGE_TLS_CERT_FILE": str(https.cert),
            "EDGE_TLS_KEY_FILE": str(https.key)}


def trust_hint(directory: Path, env: Mapping[str, str]) -> str:
    """How to trust the development CA (printed by `make run` when it made a new one)."""
    settings = load_settings(env)
    ca = directory / "ca.pem"
    return (
        f"  a new development CA: {ca}\n"
        f"    curl:    curl --cacert {ca} https://localhost:{settings.edge_tls_port}/healthz\n"
        f"    Debian:  sudo cp {ca} /usr/local/share/ca-certificates/interns-dev-ca.crt && "
        f"sudo update-ca-certificates\n"
        f"    macOS:   sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}\n"
        f"    browsers: import it as an authority (Firefox: Settings > Certificates; Chrome: Settings > Security)\n"
        f"    anyone who reads {directory / 'ca-key.pem'} can sign certificates that this machine then trusts: "
        f"remove the CA from your trust store when you are done (`make clean` deletes .run/)"
    )
