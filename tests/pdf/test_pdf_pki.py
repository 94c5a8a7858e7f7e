"""The embedded profile's test PKI (vault.pdf.pki)."""

from __future__ import annotations

import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.services import require_tool
from vault.errors import ConfigurationError
from vault.pdf.pki import (
    CRL_VALIDITY,
    DOCUMENT_SIGNING,
    TestPki,
    generate_test_pki,
    load_or_create_test_pki,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_files_are_written_and_keys_are_private(tmp_path: Path) -> None:
    generate_test_pki(tmp_path / "pki", now=NOW)
    d = tmp_path / "pki"
    for label in ("root-ca", "issuing-ca", "seal", "tsa"):
        assert (d / f"{label}.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE")
        key = d / f"{label}.key.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert (d / "root-ca.crl.pem").exists() and (d / "issuing-ca.crl.pem").exists()
    assert "NOT FOR PRODUCTION" in (d / "README.txt").read_text()


def test_every_subject_says_test_not_for_production(tmp_path: Path) -> None:
    pki = generate_test_pki(tmp_path, now=NOW)
    for cert in (pki.root_cert, pki.issuing_cert, pki.seal_cert, pki.tsa_cert):
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert "TEST" in cn and "NOT FOR PRODUCTION" in cn
        org = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
        assert "NOT FOR PRODUCTION" in org


def test_seal_certificate_profile(tmp_path: Path) -> None:
    cert = generate_test_pki(tmp_path, now=NOW).seal_cert
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ku.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    # documentSigning (RFC 9336) + emailProtection, which NSS/pdfsig insist on
    assert set(eku) == {DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION}
    assert cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)


def test_tsa_certificate_has_only_critical_timestamping_eku(tmp_path: Path) -> None:
    """RFC 3161 section 2.3."""
    cert = generate_test_pki(tmp_path, now=NOW).tsa_cert
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_chain_and_crl_signatures(tmp_path: Path) -> None:
    pki = generate_test_pki(tmp_path, now=NOW)
    pki.issuing_cert.verify_directly_issued_by(pki.root_cert)
    pki.seal_cert.verify_directly_issued_by(pki.issuing_cert)
    pki.tsa_cert.verify_directly_issued_by(pki.issuing_cert)
    assert pki.root_crl.is_signature_valid(pki.root_cert.public_key())  # type: ignore[arg-type]
    assert pki.issuing_crl.is_signature_valid(pki.issuing_cert.public_key())  # type: ignore[arg-type]
    assert len(pki.root_crl) == 0 and len(pki.issuing_crl) == 0


def test_openssl_accepts_the_tsa_certificate_for_timestamping(tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    pki = generate_test_pki(tmp_path, now=datetime.now(UTC))
    result = subprocess.run(
        [
            openssl,
            "verify",
            "-CAfile",
            str(pki.root_path),
            "-untrusted",
            str(pki.chain_path),
            "-purpose",
            "timestampsign",
            str(tmp_path / "tsa.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_loader_is_idempotent(tmp_path: Path) -> None:
    first = load_or_create_test_pki(tmp_path, NOW)
    second = load_or_create_test_pki(tmp_path, NOW + timedelta(hours=1))
    assert second.seal_cert == first.seal_cert
    assert second.root_crl == first.root_crl
    assert isinstance(second, TestPki)


def test_loader_reissues_stale_crls_and_keeps_the_certificates(tmp_path: Path) -> None:
    first = load_or_create_test_pki(tmp_path, NOW)
    later = NOW + CRL_VALIDITY * 0.75
    second = load_or_create_test_pki(tmp_path, later)
    assert second.seal_cert == first.seal_cert and second.root_cert == first.root_cert
    assert second.issuing_crl.last_update_utc > first.issuing_crl.last_update_utc
    number = second.issuing_crl.extensions.get_extension_for_class(x509.CRLNumber)
    assert number.value.crl_number == 2
    # and the refreshed CRLs are on disk
    assert load_or_create_test_pki(tmp_path, later).issuing_crl == second.issuing_crl


def test_damaged_pki_directory_is_a_configuration_error(tmp_path: Path) -> None:
    load_or_create_test_pki(tmp_path, NOW)
    (tmp_path / "seal.key.pem").write_bytes(b"garbage")
    with pytest.raises(ConfigurationError):
        load_or_create_test_pki(tmp_path, NOW)


def test_naive_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="aware"):
        generate_test_pki(tmp_path, now=datetime(2026, 1, 1))


def test_copy_of_directory_loads_identically(tmp_path: Path) -> None:
    pki = generate_test_pki(tmp_path / "a", now=NOW)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert load_or_create_test_pki(tmp_path / "b", NOW).tsa_cert == pki.tsa_cert
