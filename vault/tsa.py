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
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper as _PyHankoHTTPTimeStamper
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext

from vault.clock import Clock
from vault.errors import SignatureError, UnavailableError

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


def _attribute(name: str, value: Any) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": cms.CMSAttributeType(name), "values": (value,)})


def _token_der(token: cms.ContentInfo) -> bytes:
    der: bytes = token.dump()
    return der


# --- the in-process authority ---------------------------------------------------------
class LocalTimeStamper(TimeStamper):
    """A time stamping authority running in this process (embedded profile).

    The key is an already-loaded ``cryptography`` key: nothing is parsed per token.
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
        self._policy = policy
        self.tsa_cert = to_asn1_cert(tsa_cert)
        # RFC 3161 2.4.1: with certReq the TSA certificate must be present; the chain
        # lets a verifier build the path. Roots stay out: the verifier brings its own.
        self._token_certs = [self.tsa_cert] + [
            to_asn1_cert(c) for c in chain if c.subject != c.issuer
        ]
        self._signing_certificate = as_signing_certificate_v2(self.tsa_cert, "sha256")
        if isinstance(tsa_key, ec.EllipticCurvePrivateKey):
            self._signature_algorithm = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
        else:
            self._signature_algorithm = algos.SignedDigestAlgorithm(
                {"algorithm": "rsassa_pkcs1v15"}
            )

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def respond(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """Answer one ``TimeStampReq`` (RFC 3161 section 2.4.2)."""
        imprint = req["message_imprint"]
        if imprint["hash_algorithm"]["algorithm"].native not in ("sha256", "sha384", "sha512"):
            return tsp.TimeStampResp(
                {
                    "status": tsp.PKIStatusInfo(
                        {"status": "rejection", "fail_info": tsp.PKIFailureInfo({"bad_alg"})}
                    )
                }
            )
        gen_time = self._clock.now().astimezone(UTC)
        tst_info: dict[str, Any] = {
            "version": "v1",
            "policy": self._policy,
            "message_imprint": imprint,
            "serial_number": secrets.randbits(128),
            "gen_time": core.GeneralizedTime(gen_time),
            "tsa": asn1_x509.GeneralName(name="directory_name", value=self.tsa_cert.subject),
        }
        if req["nonce"].native is not None:
            tst_info["nonce"] = req["nonce"]
        tst_info_der = tsp.TSTInfo(tst_info).dump()

        signed_attrs = cms.CMSAttributes(
            [
                _attribute("content_type", cms.ContentType("tst_info")),
                _attribute("signing_time", cms.Time({"utc_time": core.UTCTime(gen_time)})),
                _attribute("signing_certificate_v2", self._signing_certificate),
                _attribute("message_digest", hashlib.sha256(tst_info_der).digest()),
            ]
        )
        # RFC 5652 section 5.4: the signature covers the DER SET OF the attributes.
        signature = self._sign(signed_attrs.dump())
        digest_algorithm = algos.DigestAlgorithm({"algorithm": "sha256"})
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    name="issuer_and_serial_number",
                    value=cms.IssuerAndSerialNumber(
                        {
                            "issuer": self.tsa_cert.issuer,
                            "serial_number": self.tsa_cert.serial_number,
                        }
                    ),
                ),
                "digest_algorithm": digest_algorithm,
                "signed_attrs": signed_attrs,
                "signature_algorithm": self._signature_algorithm,
                "signature": signature,
            }
        )
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [digest_algorithm],
                "encap_content_info": {
                    "content_type": "tst_info",
                    "content": cms.ParsableOctetString(tst_info_der),
                },
                "certificates": self._token_certs if req["cert_req"].native else [],
                "signer_infos": [signer_info],
            }
        )
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
        return tsp.TimeStampResp(
            {"status": tsp.PKIStatusInfo({"status": "granted"}), "time_stamp_token": token}
        )

    # pyHanko's TimeStamper interface.
    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return self.respond(req)

    def timestamp(self, data: bytes) -> bytes:
        """DER ``TimeStampToken`` over SHA-256(``data``)."""
        req = tsp.TimeStampReq(
            {
                "version": "v1",
                "message_imprint": {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "hashed_message": hashlib.sha256(data).digest(),
                },
                "nonce": secrets.randbits(63),
                "cert_req": True,
            }
        )
        response = self.respond(req)
        if response["status"]["status"].native != "granted":  # pragma: no cover - sha256
            raise SignatureError("the local TSA refused to stamp")
        return _token_der(response["time_stamp_token"])


# --- the production client ---------------------------------------------------------------
class HttpTimeStamper(_PyHankoHTTPTimeStamper):
    """RFC 3161 over HTTP (section 3.4) to an external, ideally qualified, TSA."""

    def __init__(self, url: str, *, timeout: float = 5.0, https: bool = False) -> None:
        super().__init__(url, https=https, timeout=timeout)

    async def async_timestamp_data(self, data: bytes) -> bytes:
        try:
            token = await self.async_timestamp(hashlib.sha256(data).digest(), "sha256")
        except (TimestampRequestError, OSError) as exc:
            raise UnavailableError("the time stamping authority did not answer") from exc
        return _token_der(token)

    def timestamp(self, data: bytes) -> bytes:
        """DER ``TimeStampToken`` over SHA-256(``data``). Not for use inside an event
        loop: there, await :meth:`async_timestamp_data`."""
        return asyncio.run(self.async_timestamp_data(data))


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
        info = cms.ContentInfo.load(token)
        if info["content_type"].native != "signed_data":
            raise SignatureError("timestamp token is not CMS SignedData")
        signed_data = info["content"]
        tst_info = signed_data["encap_content_info"]["content"].parsed
        if not isinstance(tst_info, tsp.TSTInfo):
            raise SignatureError("timestamp token does not hold a TSTInfo")
        gen_time: datetime = tst_info["gen_time"].native
    except SignatureError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
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
