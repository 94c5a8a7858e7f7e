"""The embedded profile's test PKI: a root, an issuing CA, a seal and a TSA certificate.

Nothing here is fit for production: every subject says ``TEST`` and ``NOT FOR
PRODUCTION`` so that no reader of a sealed PDF can mistake it for the office's real
seal. Production loads a PKCS#12 (or PKCS#11) seal issued by a qualified provider and
uses a qualified TSA over HTTP (see docs/pki.md).

Hierarchy (ECDSA P-256 everywhere, SHA-256 signatures)::

    OFPRA TEST Root CA                      CRL: root-ca.crl.pem
      └── OFPRA TEST Issuing CA             CRL: issuing-ca.crl.pem
            ├── OFPRA TEST Document Seal    KU digitalSignature+nonRepudiation,
            │                               EKU documentSigning (RFC 9336) + emailProtection
            └── OFPRA TEST Time Stamping    EKU timeStamping, critical (RFC 3161 section 2.3)

Why ECDSA P-256: pdfsig (poppler + NSS), Adobe Reader, pyHanko and ``openssl ts`` all
verify it, it signs in microseconds (RSA-3072 costs ~2 ms a signature) and keeps the
CMS blob in each PDF small. Ed25519 is avoided: PDF readers mostly do not support it.

Revocation: every non-root certificate carries a CRL distribution point (RFC 5280
section 4.2.1.13) whose URL is under the reserved ``.invalid`` top-level domain
(RFC 2606), so nothing ever tries to reach it and fails fast if it does. The CRLs are
written next to the certificates and handed to pyHanko *up front* with fetching
disabled; pyHanko then validates offline and copies them into the PDF's DSS, which is
what makes the seal PAdES B-LT (ETSI EN 319 142-1 section 5.4) without a network.
The CRLs are short-lived; :func:`load_or_create_test_pki` reissues them when they are
past half their life, since it owns the CA keys.

Invariants:

* the loader never overwrites an existing key or certificate: it only creates a
  missing PKI or refreshes stale CRLs;
* private keys are written with mode 0600, in a directory it creates with 0700;
* ``now`` is always given by the caller (STYLE.md rule 1).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vault.errors import ConfigurationError

__all__ = [
    "DEFAULT_ORGANISATION",
    "TestPki",
    "generate_test_pki",
    "load_or_create_test_pki",
]

DEFAULT_ORGANISATION = "OFPRA (TEST — NOT FOR PRODUCTION)"
CRL_BASE_URL = "http://pki.ofpra-vault-test.invalid/"

# RFC 9336: id-kp-documentSigning.
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")

CA_VALIDITY = timedelta(days=3650)
END_ENTITY_VALIDITY = timedelta(days=825)
CRL_VALIDITY = timedelta(days=30)
# Backdating absorbs small clock differences between the machine that made the PKI
# and a reader's machine.
BACKDATE = timedelta(hours=1)

_ROOT, _ISSUING, _SEAL, _TSA = "root-ca", "issuing-ca", "seal", "tsa"

SigningKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class TestPki:
    """The certificates, keys and CRLs of a test PKI, as ``cryptography`` objects."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite its name

    directory: Path
    root_cert: x509.Certificate
    root_key: SigningKey = field(repr=False)
    issuing_cert: x509.Certificate
    issuing_key: SigningKey = field(repr=False)
    seal_cert: x509.Certificate
    seal_key: SigningKey = field(repr=False)
    tsa_cert: x509.Certificate
    tsa_key: SigningKey = field(repr=False)
    root_crl: x509.CertificateRevocationList
    issuing_crl: x509.CertificateRevocationList

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Certificates between an end entity and the trust anchor, anchor last."""
        return (self.issuing_cert, self.root_cert)

    @property
    def crls(self) -> tuple[x509.CertificateRevocationList, ...]:
        return (self.root_crl, self.issuing_crl)

    @property
    def root_path(self) -> Path:
        return self.directory / f"{_ROOT}.pem"

    @property
    def chain_path(self) -> Path:
        """PEM bundle of the issuing CA (``-untrusted`` for ``openssl ts -verify``)."""
        return self.directory / "chain.pem"

    def crl_paths(self) -> tuple[Path, ...]:
        return (self.directory / f"{_ROOT}.crl.pem", self.directory / f"{_ISSUING}.crl.pem")


# --- building blocks -----------------------------------------------------------------
def _name(organisation: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "TEST — NOT FOR PRODUCTION"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_key() -> SigningKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_usage(*, sign: bool, non_repudiation: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _cdp(issuer_label: str) -> x509.CRLDistributionPoints:
    url = f"{CRL_BASE_URL}{issuer_label}.crl"
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def _certificate(
    *,
    subject: x509.Name,
    key: SigningKey,
    issuer_cert: x509.Certificate | None,
    issuer_key: SigningKey,
    issuer_label: str | None,
    now: datetime,
    validity: timedelta,
    ca_path_length: int | None,
    is_ca: bool,
    key_usage: x509.KeyUsage,
    extended_key_usage: Sequence[x509.ObjectIdentifier] = (),
    eku_critical: bool = False,
) -> x509.Certificate:
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=ca_path_length), True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    )
    if issuer_cert is not None:
        issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value),
            critical=False,
        )
    if issuer_label is not None:
        builder = builder.add_extension(_cdp(issuer_label), critical=False)
    if extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usage)), critical=eku_critical
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _crl(
    issuer_cert: x509.Certificate, issuer_key: SigningKey, *, now: datetime, number: int
) -> x509.CertificateRevocationList:
    issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(now - BACKDATE)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


# --- files -------------------------------------------------------------------------------
def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    # Write then rename, so a crash never leaves a half-written key behind; a key is
    # created with 0600 from the first byte instead of being chmod-ed afterwards.
    tmp = path.with_name(path.name + ".tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(tmp, flags, 0o600 if secret else 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _key_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


_README = """\
TEST PKI — NOT FOR PRODUCTION

Generated by vault.pdf.pki for the embedded profile of ofpra-vault. Any PDF sealed
with these keys proves nothing about the French asylum office (OFPRA).

  root-ca.pem          trust anchor to import into a test reader (pdfsig -nssdir ...)
  chain.pem            issuing CA certificate (openssl ts -verify -untrusted chain.pem)
  seal.pem / seal.key.pem   document seal
  tsa.pem / tsa.key.pem     RFC 3161 time stamping unit
  *.crl.pem            CRLs, embedded into sealed PDFs (PAdES B-LT)
"""


def _save(pki: TestPki) -> None:
    d = pki.directory
    for label, cert, key in (
        (_ROOT, pki.root_cert, pki.root_key),
        (_ISSUING, pki.issuing_cert, pki.issuing_key),
        (_SEAL, pki.seal_cert, pki.seal_key),
        (_TSA, pki.tsa_cert, pki.tsa_key),
    ):
        _write(d / f"{label}.key.pem", _key_pem(key), secret=True)
        _write(d / f"{label}.pem", _cert_pem(cert))
    _write(pki.chain_path, _cert_pem(pki.issuing_cert))
    _save_crls(pki)
    _write(d / "README.txt", _README.encode())


def _save_crls(pki: TestPki) -> None:
    _write(pki.directory / f"{_ROOT}.crl.pem", _crl_pem(pki.root_crl))
    _write(pki.directory / f"{_ISSUING}.crl.pem", _crl_pem(pki.issuing_crl))


def _load_key(path: Path) -> SigningKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigurationError(f"{path} is not an ECDSA key")
    return key


def _load(directory: Path) -> TestPki:
    def cert(label: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((directory / f"{label}.pem").read_bytes())

    def crl(label: str) -> x509.CertificateRevocationList:
        return x509.load_pem_x509_crl((directory / f"{label}.crl.pem").read_bytes())

    return TestPki(
        directory=directory,
        root_cert=cert(_ROOT),
        root_key=_load_key(directory / f"{_ROOT}.key.pem"),
        issuing_cert=cert(_ISSUING),
        issuing_key=_load_key(directory / f"{_ISSUING}.key.pem"),
        seal_cert=cert(_SEAL),
        seal_key=_load_key(directory / f"{_SEAL}.key.pem"),
        tsa_cert=cert(_TSA),
        tsa_key=_load_key(directory / f"{_TSA}.key.pem"),
        root_crl=crl(_ROOT),
        issuing_crl=crl(_ISSUING),
    )


# --- public API ------------------------------------------------------------------------
def generate_test_pki(
    directory: Path, *, now: datetime, organisation: str = DEFAULT_ORGANISATION
) -> TestPki:
    """Create a fresh test PKI in ``directory`` (overwriting one that is there)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    root_key, issuing_key, seal_key, tsa_key = (_new_key() for _ in range(4))
    root_cert = _certificate(
        subject=_name(organisation, "OFPRA TEST Root CA — NOT FOR PRODUCTION"),
        key=root_key,
        issuer_cert=None,
        issuer_key=root_key,
        issuer_label=None,
        now=now,
        validity=CA_VALIDITY,
        ca_path_length=1,
        is_ca=True,
        key_usage=_key_usage(sign=False, non_repudiation=False, ca=True),
    )
    issuing_cert = _certificate(
        subject=_name(organisation, "OFPRA TEST Issuing CA — NOT FOR PRODUCTION"),
        key=issuing_key,
        issuer_cert=root_cert,
        issuer_key=root_key,
        issuer_label=_ROOT,
        now=now,
        validity=CA_VALIDITY - timedelta(days=1),
        ca_path_length=0,
        is_ca=True,
        key_usage=_key_usage(sign=False, non_repudiation=False, ca=True),
    )
    seal_cert = _certificate(
        subject=_name(organisation, "OFPRA TEST Document Seal — NOT FOR PRODUCTION"),
        key=seal_key,
        issuer_cert=issuing_cert,
        issuer_key=issuing_key,
        issuer_label=_ISSUING,
        now=now,
        validity=END_ENTITY_VALIDITY,
        ca_path_length=None,
        is_ca=False,
        key_usage=_key_usage(sign=True, non_repudiation=True, ca=False),
        # documentSigning says what the key is for (RFC 9336); emailProtection is
        # there because NSS (pdfsig, Firefox's PDF viewer) checks PDF signatures as
        # S/MIME signer usage and refuses a leaf whose EKU lacks it.
        extended_key_usage=(DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION),
    )
    tsa_cert = _certificate(
        subject=_name(organisation, "OFPRA TEST Time Stamping Unit — NOT FOR PRODUCTION"),
        key=tsa_key,
        issuer_cert=issuing_cert,
        issuer_key=issuing_key,
        issuer_label=_ISSUING,
        now=now,
        validity=END_ENTITY_VALIDITY,
        ca_path_length=None,
        is_ca=False,
        key_usage=_key_usage(sign=True, non_repudiation=True, ca=False),
        # RFC 3161 section 2.3: exactly one EKU, id-kp-timeStamping, marked critical.
        extended_key_usage=(ExtendedKeyUsageOID.TIME_STAMPING,),
        eku_critical=True,
    )
    pki = TestPki(
        directory=directory,
        root_cert=root_cert,
        root_key=root_key,
        issuing_cert=issuing_cert,
        issuing_key=issuing_key,
        seal_cert=seal_cert,
        seal_key=seal_key,
        tsa_cert=tsa_cert,
        tsa_key=tsa_key,
        root_crl=_crl(root_cert, root_key, now=now, number=1),
        issuing_crl=_crl(issuing_cert, issuing_key, now=now, number=1),
    )
    _save(pki)
    return pki


def _crl_is_stale(crl: x509.CertificateRevocationList, now: datetime) -> bool:
    next_update = crl.next_update_utc
    if next_update is None:
        return True
    half_life = (next_update - crl.last_update_utc) / 2
    return now >= crl.last_update_utc + half_life


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return 0


def load_or_create_test_pki(
    directory: Path, now: datetime, *, organisation: str = DEFAULT_ORGANISATION
) -> TestPki:
    """Load the test PKI in ``directory``, creating it on first use.

    Idempotent: a second call returns the same certificates and keys. CRLs past half
    their life are reissued (with a higher CRL number) so that sealing keeps
    producing B-LT signatures with fresh revocation data.
    """
    if not (directory / f"{_ROOT}.pem").exists():
        return generate_test_pki(directory, now=now, organisation=organisation)
    try:
        pki = _load(directory)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"test PKI in {directory} is incomplete or damaged") from exc
    if _crl_is_stale(pki.root_crl, now) or _crl_is_stale(pki.issuing_crl, now):
        pki = replace(
            pki,
            root_crl=_crl(
                pki.root_cert, pki.root_key, now=now, number=_crl_number(pki.root_crl) + 1
            ),
            issuing_crl=_crl(
                pki.issuing_cert, pki.issuing_key, now=now, number=_crl_number(pki.issuing_crl) + 1
            ),
        )
        _save_crls(pki)
    return pki
