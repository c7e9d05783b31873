"""The development CA and certificates `make run` keeps in .run/certs/ (devstack/certs.py): made
once, reused, each identity named by its URI SAN, the edge's HTTPS certificate naming its hosts,
keys readable by their owner only."""

from __future__ import annotations

import ipaddress
import pathlib
import stat

from cryptography import x509

from devstack import certs


def _sans(path: pathlib.Path) -> x509.SubjectAlternativeName:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_first_start_makes_a_ca_and_one_certificate_per_identity(tmp_path: pathlib.Path) -> None:
    directory = tmp_path / "certs"
    assert certs.ensure_dev_certs(directory, "interns.localhost") is True
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    for name in ("cart_svc", "order_svc", "payment_svc", "enrollment_svc", "edge", "developer"):
        cert = x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
        cert.verify_directly_issued_by(ca)
        assert _sans(directory / f"{name}.pem").get_values_for_type(x509.UniformResourceIdentifier) == [
            f"spiffe://interns/{name}"]
        assert stat.S_IMODE((directory / f"{name}-key.pem").stat().st_mode) == 0o600
    https = _sans(directory / "edge-https.pem")
    assert set(https.get_values_for_type(x509.DNSName)) == {"localhost", "cart.interns.localhost",
                                                            "pay.interns.localhost"}
    assert https.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert stat.S_IMODE((directory / "ca-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_the_next_start_reuses_them_and_a_new_domain_reissues_only_the_https_certificate(tmp_path: pathlib.Path) -> None:
    directory = tmp_path / "certs"
    certs.ensure_dev_certs(directory, "interns.localhost")
    before = {path.name: path.read_bytes() for path in directory.iterdir()}
    assert certs.ensure_dev_certs(directory, "interns.localhost") is False
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == before

    assert certs.ensure_dev_certs(directory, "shop.localhost") is False
    after = {path.name: path.read_bytes() for path in directory.iterdir()}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"edge-https.pem", "edge-https-key.pem"}
    assert "cart.shop.localhost" in _sans(directory / "edge-https.pem").get_values_for_type(x509.DNSName)


def test_a_new_ca_reissues_every_certificate(tmp_path: pathlib.Path) -> None:
    directory = tmp_path / "certs"
    certs.ensure_dev_certs(directory, "interns.localhost")
    before = (directory / "order_svc.pem").read_bytes()
    (directory / "ca.pem").unlink()
    assert certs.ensure_dev_certs(directory, "interns.localhost") is True
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    order = x509.load_pem_x509_certificate((directory / "order_svc.pem").read_bytes())
    assert (directory / "order_svc.pem").read_bytes() != before
    order.verify_directly_issued_by(ca)


def test_each_process_is_given_its_own_files(tmp_path: pathlib.Path) -> None:
    assert certs.process_env(tmp_path, "payment_svc") == {
        "TLS_CA_FILE": str(tmp_path / "ca.pem"), "TLS_CERT_FILE": str(tmp_path / "payment_svc.pem"),
        "TLS_KEY_FILE": str(tmp_path / "payment_svc-key.pem")}
    edge = certs.edge_env(tmp_path)
    assert edge["TLS_CERT_FILE"] == str(tmp_path / "edge.pem")
    assert edge["EDGE_TLS_CERT_FILE"] == str(tmp_path / "edge-https.pem")
