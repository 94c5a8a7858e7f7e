"""RFC 3161 time stamping: an in-process authority, an HTTP client, and a verifier.

Three things live here:

* :class:`LocalTimeStamper` -- the embedded profile's time stamping authority. It
  signs real RFC 3161 ``TimeStampToken`` values in process with the test PKI's TSA
  key (see :mod:`vault.pdf.pki`), reading time from an injected clock.
* :class:`HttpTimeStamper` -- the production client for a (qualified) TSA reached
  over HTTP (RFC 3161 section 3.4).
* :func:`verify_timestamp` -- returns the token's time or raises
  :class:`~vault.errors.SignatureError`; never anything in between.

Both stampers are pyHanko :class:`~pyhanko.sign.timestamps.api.TimeStamper` objects,
so :class:`vault.pdf.seal.Sealer` uses them for PAdES signature timestamps, and both
offer ``timestamp(data) -> bytes`` for the ledger's checkpoints (DESIGN.md section 6).

Token profile produced by :class:`LocalTimeStamper` (RFC 3161 section 2.4.2, with
the ESS update of RFC 5816):

* ``TSTInfo`` v1, ``genTime`` in UTC with the clock's microseconds (trailing zeros
  dropped, as section 2.4.2 requires), a random 128-bit serial number, the requester's
  nonce echoed, ``tsa`` naming the TSA certificate's subject, no ``accuracy`` (the
  embedded profile has no claim to make about its clock), ``ordering`` false;
* ``SignedData`` v3 with one ``SignerInfo`` identified by issuer and serial, signed
  attributes ``contentType``, ``messageDigest``, ``signingTime`` and
  ``signingCertificateV2`` (SHA-256 ESSCertIDv2, RFC 5816), and the TSA certificate
  plus its chain (without the root) in ``certificates``.

The policy OID is a UUID-derived OID (ITU-T X.667, arc 2.25) minted for this test
profile; it designates no published TSA policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import httpx
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper as _PyHankoHTTPTimeStamper
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError, set_tsp_headers
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext

from vault.clock import Clock
from vault.errors import SignatureError, UnavailableError

if TYPE_CHECKING:
    from vault.pdf.pki import TestPki

__all__ = [
    "TEST_TSA_POLICY",
    "HttpTimeStamper",
    "LocalTimeStamper",
    "TimeStampAuthority",
    "verify_timestamp",
]

TEST_TSA_POLICY = "2.25.163196325389472536612346311591934409562"
"""Policy OID of the embedded test TSA (a UUID OID, X.667; no published policy)."""

TsaKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class TimeStampAuthority(Protocol):
    """Port: anything that returns a DER ``TimeStampToken`` over SHA-256(data)."""

    def timestamp(self, data: bytes) -> bytes: ...


def to_asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    """``cryptography`` certificate -> ``asn1crypto`` certificate (what pyHanko uses)."""
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


# --- DER assembly (X.690 section 8) --------------------------------------------------
def _tlv(tag: int, content: bytes) -> bytes:
    """One definite-length DER element with a single-byte tag."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _der_int(value: int) -> bytes:
    if value < 0:
        raise ValueError("only non-negative INTEGERs are encoded here")
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _check_token_structure(signed_data: cms.SignedData) -> None:
    """RFC 3161 2.4.2 / RFC 5652 5.1 fields that no signature covers, pinned down."""
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise SignatureError("timestamp token must have exactly one signer")
    signer_info = signer_infos[0]
    if signed_data["version"].native != "v3" or signer_info["version"].native != "v1":
        raise SignatureError("timestamp token has unexpected CMS versions")
    # Certificates sit outside the signed content. asn1crypto ignores the "unused
    # bits" count of a signature BIT STRING, so a token with that byte changed would
    # still verify: a second byte string for the same token. Signatures are whole
    # octets (RFC 5280 4.1.1.3, RFC 5758 3.2), so insist on zero unused bits.
    for choice in signed_data["certificates"] or ():
        if choice.name == "certificate" and choice.chosen["signature_value"].contents[:1] != b"\0":
            raise SignatureError("timestamp token carries a malformed certificate")
    declared = [a.dump() for a in signed_data["digest_algorithms"]]
    if declared != [signer_info["digest_algorithm"].dump()]:
        raise SignatureError("timestamp token declares other digest algorithms than it uses")


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def asn1_core_dump(value: core.Asn1Value) -> bytes:
    der: bytes = value.dump()
    return der


def _attribute_der(name: str, value: core.Asn1Value) -> bytes:
    """A CMS ``Attribute`` with one value: SEQUENCE { OID, SET { value } }."""
    oid = asn1_core_dump(cms.CMSAttributeType(name))
    return _tlv(0x30, oid + _tlv(0x31, asn1_core_dump(value)))


_SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")  # 1.2.840.113549.1.7.2
_TST_INFO_OID = bytes.fromhex("060b2a864886f70d0109100104")  # 1.2.840.113549.1.9.16.1.4
_SHA256_ALGORITHM = bytes.fromhex("300d06096086480165030402010500")  # sha256, NULL params
_GRANTED = bytes.fromhex("3003020100")  # PKIStatusInfo { status granted(0) }
_ACCEPTED_IMPRINTS = ("sha256", "sha384", "sha512")


def _token_der(token: cms.ContentInfo) -> bytes:
    der: bytes = token.dump()
    return der


# --- the in-process authority ---------------------------------------------------------
class LocalTimeStamper(TimeStamper):
    """A time stamping authority running in this process (embedded profile).

    The key is an already-loaded ``cryptography`` key and every constant part of the
    token (certificates, signer identifier, ESS attribute, algorithm identifiers) is
    DER-encoded once here: building the token through asn1crypto's object model
    re-serialises the embedded certificates and costs ~40 ms a token, assembling it
    from pre-encoded parts costs well under 1 ms.
    """

    def __init__(
        self,
        tsa_cert: x509.Certificate,
        tsa_key: TsaKey,
        chain: Sequence[x509.Certificate],
        clock: Clock,
        *,
        policy: str = TEST_TSA_POLICY,
    ) -> None:
        super().__init__(include_nonce=True)  # type: ignore[no-untyped-call]  # pyHanko
        if tsa_cert.public_key() != tsa_key.public_key():
            raise ValueError("the TSA key does not match the TSA certificate")
        self._key = tsa_key
        self._clock = clock
        self.tsa_cert = to_asn1_cert(tsa_cert)
        cert_der = tsa_cert.public_bytes(serialization.Encoding.DER)

        # RFC 3161 2.4.1: with certReq the TSA certificate must be present; the chain
        # lets a verifier build the path. Roots stay out: the verifier brings its own.
        # RFC 5652 5.1: certificates [0] IMPLICIT CertificateSet (a DER SET OF: sorted).
        certs = [cert_der] + [
            c.public_bytes(serialization.Encoding.DER) for c in chain if c.subject != c.issuer
        ]
        self._certificates = _tlv(0xA0, b"".join(sorted(certs)))
        self._policy = asn1_core_dump(core.ObjectIdentifier(policy))
        # TSTInfo tsa [0] GeneralName: a tagged CHOICE is explicit; directoryName is [4].
        self._tsa_name = _tlv(0xA0, _tlv(0xA4, self.tsa_cert.subject.dump()))
        self._sid = asn1_core_dump(
            cms.IssuerAndSerialNumber(
                {"issuer": self.tsa_cert.issuer, "serial_number": self.tsa_cert.serial_number}
            )
        )
        self._ess_attribute = _attribute_der(
            "signing_certificate_v2", as_signing_certificate_v2(self.tsa_cert, "sha256")
        )
        self._content_type_attribute = _attribute_der("content_type", cms.ContentType("tst_info"))
        self._digest_algorithm = asn1_core_dump(algos.DigestAlgorithm({"algorithm": "sha256"}))
        algorithm = (
            "sha256_ecdsa" if isinstance(tsa_key, ec.EllipticCurvePrivateKey) else ("sha256_rsa")
        )
        self._signature_algorithm = asn1_core_dump(
            algos.SignedDigestAlgorithm({"algorithm": algorithm})
        )

    @classmethod
    def from_test_pki(cls, pki: TestPki, clock: Clock) -> LocalTimeStamper:
        """The embedded profile's TSA, from :func:`vault.pdf.pki.load_or_create_test_pki`."""
        return cls(pki.tsa_cert, pki.tsa_key, pki.chain, clock)

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def token_for(self, imprint_der: bytes, nonce: int | None, *, with_certs: bool) -> bytes:
        """DER ``TimeStampToken`` for a DER ``MessageImprint`` (RFC 3161 section 2.4.2)."""
        gen_time = self._clock.now().astimezone(UTC)
        tst_info = _tlv(
            0x30,
            _der_int(1)
            + self._policy
            + imprint_der
            + _der_int(secrets.randbits(128))
            + asn1_core_dump(core.GeneralizedTime(gen_time))
            + (_der_int(nonce) if nonce is not None else b"")
            + self._tsa_name,
        )
        attributes = sorted(
            [
                self._content_type_attribute,
                _attribute_der("signing_time", core.UTCTime(gen_time)),
                self._ess_attribute,
                _attribute_der(
                    "message_digest", core.OctetString(hashlib.sha256(tst_info).digest())
                ),
            ]
        )
        attributes_der = b"".join(attributes)
        # RFC 5652 section 5.4: the signature covers the attributes encoded as a
        # SET OF (tag 0x31), while the SignerInfo carries them as [0] IMPLICIT.
        signature = self._sign(_tlv(0x31, attributes_der))
        signer_info = _tlv(
            0x30,
            _der_int(1)
            + self._sid
            + self._digest_algorithm
            + _tlv(0xA0, attributes_der)
            + self._signature_algorithm
            + _tlv(0x04, signature),
        )
        encapsulated = _tlv(0x30, _TST_INFO_OID + _tlv(0xA0, _tlv(0x04, tst_info)))
        signed_data = _tlv(
            0x30,
            _der_int(3)
            + _tlv(0x31, self._digest_algorithm)
            + encapsulated
            + (self._certificates if with_certs else b"")
            + _tlv(0x31, signer_info),
        )
        return _tlv(0x30, _SIGNED_DATA_OID + _tlv(0xA0, signed_data))

    def respond(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """Answer one ``TimeStampReq``; refuse digests weaker than SHA-256."""
        imprint = req["message_imprint"]
        if imprint["hash_algorithm"]["algorithm"].native not in _ACCEPTED_IMPRINTS:
            return tsp.TimeStampResp(
                {
                    "status": tsp.PKIStatusInfo(
                        {"status": "rejection", "fail_info": tsp.PKIFailureInfo({"bad_alg"})}
                    )
                }
            )
        token = self.token_for(
            imprint.dump(), req["nonce"].native, with_certs=bool(req["cert_req"].native)
        )
        return tsp.TimeStampResp.load(_tlv(0x30, _GRANTED + token))

    # pyHanko's TimeStamper interface.
    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return self.respond(req)

    def timestamp(self, data: bytes) -> bytes:
        """DER ``TimeStampToken`` over SHA-256(``data``)."""
        imprint = _tlv(0x30, _SHA256_ALGORITHM + _tlv(0x04, hashlib.sha256(data).digest()))
        return self.token_for(imprint, None, with_certs=True)


# --- the production client ---------------------------------------------------------------
class HttpTimeStamper(_PyHankoHTTPTimeStamper):
    """RFC 3161 over HTTP (section 3.4) to an external, ideally qualified, TSA."""

    def __init__(self, url: str, *, timeout: float = 5.0, https: bool = False) -> None:
        super().__init__(url, https=https, timeout=timeout)
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    async def async_timestamp_data(self, data: bytes) -> bytes:
        try:
            token = await self.async_timestamp(hashlib.sha256(data).digest(), "sha256")
        except (TimestampRequestError, OSError) as exc:
            raise UnavailableError("the time stamping authority did not answer") from exc
        return _token_der(token)

    def timestamp(self, data: bytes) -> bytes:
        """DER ``TimeStampToken`` over SHA-256(``data``), from a blocking caller (the
        checkpoint thread). One persistent HTTP client: the async path builds an
        aiohttp session and a TLS context per request, which cost a production worker
        about a sixth of its CPU at one checkpoint a second. Request, status and nonce
        handling are pyHanko's own (``request_cms``, ``handle_tsp_response``)."""
        nonce, req = self.request_cms(  # type: ignore[no-untyped-call]
            hashlib.sha256(data).digest(), "sha256"
        )
        try:
            r = self._http().post(
                self.url,
                content=req.dump(),
                headers=set_tsp_headers({}),
                timeout=self.timeout,
            )
            r.raise_for_status()
            resp = tsp.TimeStampResp.load(r.content)
            status = resp["status"]["status"].native
            token = resp["time_stamp_token"]
            got = token["content"]["encap_content_info"]["content"].parsed["nonce"].native
        except (httpx.HTTPError, ValueError, KeyError, TypeError, OSError) as exc:
            raise UnavailableError("the time stamping authority did not answer") from exc
        # RFC 3161 §2.4.2. (pyHanko's handle_tsp_response does the same two checks but
        # fails with AttributeError while wording the nonce mismatch.)
        if status not in ("granted", "granted_with_mods"):
            raise UnavailableError(f"the time stamping authority refused the request ({status})")
        if got != nonce:
            raise UnavailableError("the time stamping authority answered another request (nonce)")
        return _token_der(token)

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(follow_redirects=False)
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None


# --- verification -----------------------------------------------------------------------------
def verify_timestamp(
    token: bytes,
    data: bytes,
    trust_roots: Iterable[x509.Certificate],
    *,
    crls: Iterable[x509.CertificateRevocationList] = (),
    at: datetime | None = None,
) -> datetime:
    """Check that ``token`` is a trusted RFC 3161 token over ``data``; return its time.

    The TSA's certificate path is validated at ``at``; by default at the token's own
    ``genTime``, which asks "was this TSA entitled to sign when it signed?". Keeping
    an old token verifiable after its TSA certificate expires is the business of
    archive timestamps (PAdES-LTA), not of this function.

    Raises :class:`SignatureError` on any failure, with the reason in its ``detail``.
    """
    try:
        info = cms.ContentInfo.load(token, strict=True)
        if info["content_type"].native != "signed_data":
            raise SignatureError("timestamp token is not CMS SignedData")
        signed_data = info["content"]
        tst_info = signed_data["encap_content_info"]["content"].parsed
        if not isinstance(tst_info, tsp.TSTInfo):
            raise SignatureError("timestamp token does not hold a TSTInfo")
        _check_token_structure(signed_data)
        gen_time: datetime = tst_info["gen_time"].native
    except SignatureError:
        raise
    except Exception as exc:  # asn1crypto fails lazily, with many types
        raise SignatureError("timestamp token is not valid DER") from exc

    context = ValidationContext(
        trust_roots=[to_asn1_cert(c) for c in trust_roots],
        crls=[c.public_bytes(serialization.Encoding.DER) for c in crls],
        allow_fetching=False,
        moment=at or gen_time,
        revocation_mode="soft-fail",
    )

    def expected_imprint(algorithm: str) -> bytes:
        if algorithm not in ("sha256", "sha384", "sha512"):
            raise SignatureError(f"timestamp imprint uses {algorithm}")
        return hashlib.new(algorithm, data).digest()

    try:
        kwargs = asyncio.run(validate_tst_signed_data(signed_data, context, expected_imprint))
        status = TimestampSignatureStatus(**kwargs)
    except SignatureError:
        raise
    except Exception as exc:  # pyHanko raises many types; all mean "invalid"
        raise SignatureError(f"timestamp token does not validate: {exc}") from exc
    if not status.intact:
        raise SignatureError("timestamp token is not over these data")
    if not status.valid:
        raise SignatureError("timestamp token signature is invalid")
    if not status.trusted:
        raise SignatureError("timestamp token is not from a trusted TSA")
    return gen_time.astimezone(UTC)
