#!/usr/bin/env python3
"""Standalone verifier of OFPRA vault proof files (format ``ofpra-vault-proof/1``).

A court or a lawyer runs this on their own machine. It does NOT import the vault: it
re-implements every check from the public specifications, with only the Python
standard library and ``cryptography``. Optional: ``pyhanko`` (PDF seal validation;
without it the seal checks say "not checked"), ``holidays`` (the appeal deadline;
without it "not checked"), ``asn1crypto`` is not needed (DER is parsed here).

    python3 verify_proof.py proof.zip [--log-key VKEY] [--trust-root root.pem]
                            [--witness-key VKEY ...] [--json] [--lang fr|en]

Exit status: 0 when every check passed (checks that could not run are listed as
such), 1 when any check failed (named on stderr), 2 on bad usage.

Checks and the texts they implement:

* entries: RFC 8785 (JCS) canonical JSON, ``seq`` = index, one document, SHA-256;
* inclusion: RFC 9162 section 2.1.3.2 (leaf = SHA-256(0x00||entry));
* checkpoint_signature: C2SP signed-note + tlog-checkpoint, Ed25519 (RFC 8032);
* cosignatures: C2SP tlog-cosignature/v1;
* checkpoint_timestamp: RFC 3161 token over the exact note bytes (CMS, RFC 5652),
  the TSA certificate path to the trust root (RFC 5280 signatures, validity at
  genTime, extended key usage timeStamping);
* document_seal, attestation_seal: PAdES (ETSI EN 319 142-1) via pyHanko;
* proof_binding: the sealed attestation names SHA-256(proof.json);
* document_digest, subject_commitment: SHA-256;
* notification: CESEDA R.531-17, rule ``R531-17/deemed-15-days`` v1 (first access
  before the end of the 15th day after making available, Europe/Paris calendar);
* appeal_deadline: CESEDA L.532-1, rule ``CESEDA L532-1/one-month-franc`` v1.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import hashlib
import io
import json
import re
import sys
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

FORMAT = "ofpra-vault-proof/1"
CHECKS = (
    "bundle",
    "files",
    "entries",
    "inclusion",
    "checkpoint_signature",
    "cosignatures",
    "checkpoint_timestamp",
    "document_seal",
    "attestation_seal",
    "proof_binding",
    "document_digest",
    "subject_commitment",
    "notification",
    "appeal_deadline",
)
PARIS = ZoneInfo("Europe/Paris")
NOTIFICATION_RULE = ("R531-17/deemed-15-days", "1", 15)
APPEAL_RULE = "CESEDA L532-1/one-month-franc"


class Fail(Exception):
    pass


# --- results -------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    status: str  # pass | fail | skipped
    detail: str


class Results:
    def __init__(self) -> None:
        self.r: dict[str, Result] = {}

    def put(self, name: str, status: str, detail: str) -> None:
        old = self.r.get(name)
        if old and old.status == "fail":
            if status == "fail":
                old.detail += "; " + detail
            return
        self.r[name] = Result(name, status, detail)

    def ok(self, n: str, d: str) -> None:
        self.put(n, "pass", d)

    def fail(self, n: str, d: str) -> None:
        self.put(n, "fail", d)

    def skip(self, n: str, d: str) -> None:
        self.put(n, "skipped", d)

    def all(self) -> list[Result]:
        return [self.r.get(n) or Result(n, "skipped", "not reached") for n in CHECKS]


# --- JCS (RFC 8785) for the entry alphabet: objects, arrays, strings, integers ----------
def jcs(value: Any) -> bytes:
    def enc(v: Any) -> str:
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            raise Fail("floating-point numbers are not used in entries")
        if isinstance(v, str):
            # RFC 8785 3.2.2.2: JSON.stringify escaping; Python's matches it with
            # ensure_ascii=False (short escapes, else \\u00xx lower-case).
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ",".join(enc(x) for x in v) + "]"
        if isinstance(v, dict):
            # RFC 8785 3.2.3: keys sorted by UTF-16 code units.
            keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
            return "{" + ",".join(enc(k) + ":" + enc(v[k]) for k in keys) + "}"
        raise Fail(f"unexpected JSON value {type(v).__name__}")

    return enc(value).encode("utf-8")


# --- RFC 9162 --------------------------------------------------------------------------
def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2, step by step."""
    if index >= size or index < 0 or any(len(p) != 32 for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# --- C2SP signed notes -----------------------------------------------------------------
def parse_vkey(vkey: str) -> tuple[str, int, int, bytes]:
    name, hex8, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    kid = int(hex8, 16)
    want = int.from_bytes(hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4], "big")
    if kid != want:
        raise Fail(f"key id of {name} does not match its key")
    return name, kid, raw[0], raw[1:]


def split_note(note: str) -> tuple[str, list[tuple[str, int, bytes]]]:
    i = note.rfind("\n\n")
    if i < 0 or not note.endswith("\n"):
        raise Fail("malformed note")
    text, sigs = note[: i + 1], note[i + 2 : -1].split("\n")
    out = []
    for line in sigs:
        if not line.startswith("\u2014 "):
            raise Fail("malformed signature line")
        name, _, b64 = line[2:].partition(" ")
        raw = base64.b64decode(b64, validate=True)
        out.append((name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return text, out


# --- DER ---------------------------------------------------------------------------------
@dataclass
class Tlv:
    tag: int
    raw: bytes  # whole TLV
    body: bytes

    def kids(self) -> list[Tlv]:
        return der_seq(self.body)


def der_read(data: bytes, pos: int = 0) -> tuple[Tlv, int]:
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise Fail("multi-byte DER tags are not used here")
    n = data[pos + 1]
    off = pos + 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4:
            raise Fail("bad DER length")
        n = int.from_bytes(data[off : off + k], "big")
        off += k
    end = off + n
    if end > len(data):
        raise Fail("truncated DER")
    return Tlv(tag, data[pos:end], data[off:end]), end


def der_seq(body: bytes) -> list[Tlv]:
    out, pos = [], 0
    while pos < len(body):
        t, pos = der_read(body, pos)
        out.append(t)
    return out


def der_oid(t: Tlv) -> str:
    b = t.body
    parts = [b[0] // 40, b[0] % 40]
    v = 0
    for x in b[1:]:
        v = (v << 7) | (x & 0x7F)
        if not x & 0x80:
            parts.append(v)
            v = 0
    return ".".join(map(str, parts))


OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_TSTINFO = "1.2.840.113549.1.9.16.1.4"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SHA256 = "2.16.840.1.101.3.4.2.1"
EKU_TIMESTAMPING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.8")
SIG_HASHES = {
    "1.2.840.10045.4.3.2": hashes.SHA256(),
    "1.2.840.10045.4.3.3": hashes.SHA384(),
    "1.2.840.113549.1.1.11": hashes.SHA256(),
    "1.2.840.113549.1.1.12": hashes.SHA384(),
    "1.2.840.10045.2.1": hashes.SHA256(),  # ecPublicKey + sha256 digest algorithm
    "1.2.840.113549.1.1.1": hashes.SHA256(),
}


def verify_sig(cert: x509.Certificate, sig: bytes, data: bytes, alg_oid: str) -> None:
    pub = cert.public_key()
    h = SIG_HASHES.get(alg_oid)
    if h is None:
        raise Fail(f"unsupported signature algorithm {alg_oid}")
    if isinstance(pub, ec.EllipticCurvePublicKey):
        pub.verify(sig, data, ec.ECDSA(h))
    elif isinstance(pub, rsa.RSAPublicKey):
        pub.verify(sig, data, padding.PKCS1v15(), h)
    else:
        raise Fail("unsupported TSA key type")


def check_path(
    leaf: x509.Certificate,
    pool: list[x509.Certificate],
    roots: list[x509.Certificate],
    at: datetime,
) -> None:
    """Walk issuer links from ``leaf`` to one of ``roots``; signatures and validity."""
    cur = leaf
    root_der = {r.tbs_certificate_bytes for r in roots}
    for _ in range(8):
        if not cur.not_valid_before_utc <= at <= cur.not_valid_after_utc:
            raise Fail(f"certificate {cur.subject.rfc4514_string()} not valid at {at}")
        if cur.tbs_certificate_bytes in root_der:
            return
        issuer = next((c for c in roots + pool if c.subject == cur.issuer and c != cur), None)
        if issuer is None:
            raise Fail(f"no issuer for {cur.subject.rfc4514_string()} up to the trust root")
        try:
            cur.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise Fail(f"bad certificate signature on {cur.subject.rfc4514_string()}") from exc
        cur = issuer
    raise Fail("certificate path too long")


def verify_rfc3161(
    token: bytes, data: bytes, roots: list[x509.Certificate], extra: list[x509.Certificate]
) -> datetime:
    ci, end = der_read(token)
    if end != len(token):
        raise Fail("trailing bytes after the token")
    kids = ci.kids()
    if der_oid(kids[0]) != OID_SIGNED_DATA:
        raise Fail("not CMS SignedData")
    sd = der_read(kids[1].body)[0].kids()  # [0] EXPLICIT SignedData
    encap = sd[2].kids()
    if der_oid(encap[0]) != OID_TSTINFO:
        raise Fail("not a TSTInfo")
    econtent = der_read(encap[1].body)[0].body  # [0] EXPLICIT OCTET STRING
    tst = der_read(econtent)[0].kids()
    imprint = tst[2].kids()
    alg = der_oid(imprint[0].kids()[0])
    if alg != OID_SHA256:
        raise Fail("imprint is not SHA-256")
    if imprint[1].body != hashlib.sha256(data).digest():
        raise Fail("the token is not over these bytes (message imprint differs)")
    gen = tst[4].body.decode("ascii")
    gen_time = datetime.strptime(gen.split(".")[0].rstrip("Z"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    idx = 3
    certs: list[x509.Certificate] = []
    if sd[idx].tag == 0xA0:
        certs = [x509.load_der_x509_certificate(c.raw) for c in sd[idx].kids()]
        idx += 1
    if sd[idx].tag == 0xA1:
        idx += 1
    signer_infos = sd[idx].kids()
    if len(signer_infos) != 1:
        raise Fail("the token must have exactly one signer")
    si = signer_infos[0].kids()
    signed_attrs = si[3]
    if signed_attrs.tag != 0xA0:
        raise Fail("no signed attributes")
    md = ct = None
    for attr in signed_attrs.kids():
        a = attr.kids()
        oid = der_oid(a[0])
        val = a[1].kids()[0]
        if oid == OID_MESSAGE_DIGEST:
            md = val.body
        elif oid == OID_CONTENT_TYPE:
            ct = der_oid(val)
    if ct != OID_TSTINFO or md != hashlib.sha256(econtent).digest():
        raise Fail("signed attributes do not cover the TSTInfo")
    sig_alg = der_oid(si[4].kids()[0])
    signature = si[5].body
    to_sign = b"\x31" + signed_attrs.raw[1:]  # RFC 5652 5.4: signed as SET OF
    signer = None
    for c in certs + extra:
        try:
            verify_sig(c, signature, to_sign, sig_alg)
            signer = c
            break
        except (InvalidSignature, Fail, ValueError, TypeError):
            continue
    if signer is None:
        raise Fail("the token signature does not verify with any TSA certificate")
    try:
        eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        if EKU_TIMESTAMPING not in eku.value:
            raise Fail("the signer is not a time-stamping authority")
    except x509.ExtensionNotFound as exc:
        raise Fail("the TSA certificate has no extended key usage") from exc
    check_path(signer, certs + extra, roots, gen_time)
    return gen_time


# --- PDF seals (optional pyHanko) ----------------------------------------------------------
def check_seal(pdf: bytes, roots: list[x509.Certificate]) -> tuple[str, str]:
    try:
        from asn1crypto import x509 as ax509
        from pyhanko.pdf_utils.reader import PdfFileReader
        from pyhanko.sign.validation import validate_pdf_signature
        from pyhanko.sign.validation.dss import DocumentSecurityStore
        from pyhanko.sign.validation.status import SignatureCoverageLevel
        from pyhanko_certvalidator import ValidationContext
    except ImportError:
        return "skipped", "not checked (pyhanko is not installed)"
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        r = PdfFileReader(io.BytesIO(pdf), strict=False)
        sigs = r.embedded_signatures
        if not sigs:
            return "fail", "no signature"
        kw: dict[str, Any] = {
            "trust_roots": [ax509.Certificate.load(c.public_bytes(Encoding.DER)) for c in roots],
            "allow_fetching": False,
            "revocation_mode": "soft-fail",
        }
        try:
            dss = DocumentSecurityStore.read_dss(r)
            vc = dss.as_validation_context(kw)
        except Exception:  # noqa: BLE001 -- no DSS: plain context
            vc = ValidationContext(**kw)
        st = validate_pdf_signature(sigs[-1], signer_validation_context=vc)
    except Exception as exc:  # noqa: BLE001 -- any failure means "not valid"
        return "fail", f"validation failed: {exc}"
    whole = st.coverage == SignatureCoverageLevel.ENTIRE_FILE
    if st.intact and st.valid and st.trusted and whole:
        return "pass", f"valid seal by {st.signing_cert.subject.human_friendly}"
    return "fail", f"intact={st.intact} valid={st.valid} trusted={st.trusted} whole={whole}"


# --- legal rules -----------------------------------------------------------------------------
def parse_at(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def deemed(made: datetime) -> tuple[date, datetime]:
    """R.531-17: end of the 15th day after the day of making available, Paris calendar."""
    d = made.astimezone(PARIS).date() + timedelta(days=NOTIFICATION_RULE[2])
    instant = datetime.combine(d + timedelta(days=1), time(0), tzinfo=PARIS).astimezone(UTC)
    return d, instant


def appeal(notified: date) -> date | None:
    """L.532-1: one month date to date (or month end), plus one day (délai franc),
    then the next working day (French national public holidays)."""
    try:
        import holidays
    except ImportError:
        return None
    y, m0 = divmod(notified.month, 12)
    year, month = notified.year + y, m0 + 1
    d = date(year, month, min(notified.day, calendar.monthrange(year, month)[1]))
    d += timedelta(days=1)
    while d.weekday() >= 5 or d in holidays.country_holidays("FR", years=d.year):
        d += timedelta(days=1)
    return d


# --- the verification ---------------------------------------------------------------------------
def load_pem(pem: bytes) -> list[x509.Certificate]:
    return list(x509.load_pem_x509_certificates(pem)) if pem.strip() else []


def verify(
    zip_bytes: bytes, log_key: str | None, trust_root: bytes | None, witness_keys: list[str]
) -> tuple[Results, dict[str, Any]]:
    res, info = Results(), {}
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
            names = zf.namelist()
            if len(set(names)) != len(names):
                raise zipfile.BadZipFile("duplicate names")
            files = {n: zf.read(n) for n in names}
        raw = files["proof.json"]
        proof = json.loads(raw)
        if proof.get("format") != FORMAT:
            raise Fail("unknown format")
        for k in (
            "log",
            "checkpoint",
            "checkpoint_timestamp",
            "entries",
            "document",
            "notification",
            "files",
        ):
            proof[k]
        for n in ("document.pdf", "attestation.pdf"):
            files[n]
    except (zipfile.BadZipFile, zlib.error, KeyError, ValueError, Fail, OSError) as exc:
        res.fail("bundle", f"not a proof file: {exc!r}")
        return res, info
    if jcs(proof) != raw:
        res.fail("bundle", "proof.json is not RFC 8785 canonical")
    else:
        res.ok("bundle", f"{FORMAT}, {len(files)} files")
    try:
        body(res, info, proof, files, raw, log_key, trust_root, witness_keys)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, Fail) as exc:
        res.fail("bundle", f"malformed proof file: {exc!r}")
    return res, info


def body(
    res: Results,
    info: dict[str, Any],
    proof: dict[str, Any],
    files: dict[str, bytes],
    raw: bytes,
    log_key: str | None,
    trust_root: bytes | None,
    witness_keys: list[str],
) -> None:
    doc = proof["document"]
    info["document_id"], info["document_type"] = doc["id"], doc.get("type")
    listed = proof["files"]
    bad = [
        n for n, h in listed.items() if n not in files or hashlib.sha256(files[n]).hexdigest() != h
    ]
    extra = [n for n in files if n not in listed and n not in ("proof.json", "attestation.pdf")]
    if bad or extra or "document.pdf" not in listed:
        res.fail("files", f"altered: {bad}; unlisted: {extra}")
    else:
        res.ok("files", f"{len(listed)} files match proof.json")

    roots = load_pem(trust_root) if trust_root is not None else load_pem(files.get("root.pem", b""))
    pool = load_pem(proof.get("tsa_chain", "").encode()) + load_pem(files.get("tsa-chain.pem", b""))

    # checkpoint
    origin = proof["log"]["origin"]
    note = proof["checkpoint"]["note"]
    root_hash, size = None, 0
    try:
        name, kid, typ, key = parse_vkey(log_key or proof["log"]["public_key"])
        if typ != 0x01 or name != origin:
            raise Fail("the log key is not an Ed25519 key of this origin")
        text, sigs = split_note(note)
        mine = [s for s in sigs if (s[0], s[1]) == (name, kid)]
        if not mine:
            raise Fail("no signature by the log key")
        ed25519.Ed25519PublicKey.from_public_bytes(key).verify(mine[0][2], text.encode())
        lines = text.split("\n")
        if lines[0] != origin:
            raise Fail("checkpoint origin differs")
        size = int(lines[1])
        root_hash = base64.b64decode(lines[2], validate=True)
        info["checkpoint_size"] = size
        res.ok("checkpoint_signature", f"signed by {name} (size {size})")
    except (Fail, ValueError, InvalidSignature, IndexError) as exc:
        res.fail("checkpoint_signature", f"does not verify: {exc!r}")
        text = note[: note.rfind("\n\n") + 1]

    # cosignatures
    cosigs = proof["checkpoint"].get("cosignatures") or []
    keys = {}
    for k in witness_keys + list(proof["log"].get("witnesses") or []):
        try:
            n, i, t, kb = parse_vkey(k)
            if t == 0x04:
                keys[(n, i)] = kb
        except (Fail, ValueError):
            continue
    verified, unknown = [], []
    for line in cosigs:
        try:
            _, parsed = split_note("x\n\n" + line.rstrip("\n") + "\n")
            n, i, sig = parsed[0]
            if (n, i) not in keys:
                unknown.append(n)
                continue
            ts = int.from_bytes(sig[:8], "big")
            msg = b"cosignature/v1\ntime %d\n" % ts + text.encode()
            ed25519.Ed25519PublicKey.from_public_bytes(keys[(n, i)]).verify(sig[8:], msg)
            verified.append(n)
        except (Fail, ValueError, InvalidSignature, IndexError) as exc:
            res.fail("cosignatures", f"a cosignature does not verify: {exc!r}")
    info["witnesses"] = verified
    if not cosigs:
        res.skip("cosignatures", "no witness cosignature in the file")
    elif unknown:
        res.fail("cosignatures", f"unknown witness keys: {unknown}")
    else:
        res.ok("cosignatures", f"verified: {verified}")

    # time stamp
    try:
        if not roots:
            raise Fail("no trust root")
        token = base64.b64decode(proof["checkpoint_timestamp"], validate=True)
        when = verify_rfc3161(token, note.encode("utf-8"), roots, pool)
        res.ok("checkpoint_timestamp", f"note time-stamped at {rfc3339(when)}")
    except (Fail, ValueError, IndexError, InvalidSignature) as exc:
        res.fail("checkpoint_timestamp", str(exc))

    # entries + inclusion
    parsed_entries, problems, incl = [], [], []
    for item in proof["entries"]:
        idx = int(item["index"])
        data = base64.b64decode(item["entry"], validate=True)
        try:
            e = json.loads(data)
            if jcs(e) != data:
                raise Fail("not canonical")
            if e.get("seq") != idx or e.get("document_id") != doc["id"]:
                raise Fail("wrong seq or document")
            parsed_entries.append(e)
        except (ValueError, Fail) as exc:
            problems.append(f"#{idx}: {exc}")
        if root_hash is not None:
            path = [base64.b64decode(h, validate=True) for h in item["inclusion_proof"]]
            if not verify_inclusion(leaf_hash(data), idx, size, path, root_hash):
                incl.append(f"#{idx}")
    if not any(e.get("type") == "POSTED" for e in parsed_entries):
        problems.append("no POSTED entry")
    if problems:
        res.fail("entries", "; ".join(problems))
    else:
        res.ok("entries", ", ".join(e["type"] for e in parsed_entries))
    if root_hash is None:
        res.fail("inclusion", "no verified checkpoint root")
    elif incl:
        res.fail("inclusion", f"not in the tree: {incl}")
    else:
        res.ok("inclusion", f"{len(proof['entries'])} entries in the tree of size {size}")

    # seals
    for name, fname in (("document_seal", "document.pdf"), ("attestation_seal", "attestation.pdf")):
        status, detail = check_seal(files[fname], roots) if roots else ("fail", "no trust root")
        res.put(name, status, detail)

    # binding: /Keywords (proof-sha256:<hex>) of the sealed attestation
    m = re.search(rb"/Keywords\s*\(proof-sha256:([0-9a-f]{64})\)", files["attestation.pdf"])
    if m and m.group(1).decode() == hashlib.sha256(raw).hexdigest():
        res.ok("proof_binding", "the attestation names this proof.json")
    else:
        res.fail("proof_binding", "the attestation was issued for another proof.json")

    # digests
    actual = hashlib.sha256(files["document.pdf"]).hexdigest()
    recorded = {e["document_sha256"] for e in parsed_entries if "document_sha256" in e}
    if actual == doc["sha256"] and recorded == {actual}:
        res.ok("document_digest", f"SHA-256 {actual} in every entry")
    else:
        res.fail("document_digest", "the PDF's SHA-256 differs from proof.json or the entries")

    commitments = {e["subject_commitment"] for e in parsed_entries if "subject_commitment" in e}
    subject = proof.get("subject")
    if len(commitments) > 1:
        res.fail("subject_commitment", "entries commit to different subjects")
    elif subject is None:
        res.skip("subject_commitment", "subject not included")
    else:
        c = hashlib.sha256(
            base64.b64decode(subject["salt"], validate=True)
            + str(subject["agdref"]).encode("ascii")
        ).hexdigest()
        if commitments == {c}:
            res.ok("subject_commitment", "SHA-256(salt || AGDREF) matches every entry")
        else:
            res.fail("subject_commitment", "the subject does not open the commitment")

    dates(res, info, proof["notification"], parsed_entries)


def dates(
    res: Results, info: dict[str, Any], block: dict[str, Any], entries: list[dict[str, Any]]
) -> None:
    by = {e["type"]: e for e in entries}
    posted, first, notified = by.get("POSTED"), by.get("FIRST_ACCESS"), by.get("NOTIFIED")
    if posted is None:
        res.fail("notification", "no POSTED entry")
        return
    problems = []
    if block.get("made_available_at") != posted["at"]:
        problems.append("made_available_at differs from POSTED")
    if block.get("first_access_at") != (first["at"] if first else None):
        problems.append("first_access_at differs from FIRST_ACCESS")
    if notified is None:
        if block.get("notified_on") is not None:
            problems.append("notified_on without a NOTIFIED entry")
    elif (notified.get("rule"), notified.get("rule_version")) != NOTIFICATION_RULE[:2]:
        problems.append(f"unknown rule {notified.get('rule')}")
    else:
        made = parse_at(posted["at"])
        d, instant = deemed(made)
        access = parse_at(first["at"]) if first else None
        if access is not None and access < instant:
            want = {
                "notified_on": access.astimezone(PARIS).date().isoformat(),
                "basis": "first_access",
                "notified_at": rfc3339(access),
            }
        else:
            if parse_at(notified["at"]) < instant:
                problems.append("NOTIFIED recorded before the delay expired")
            want = {
                "notified_on": d.isoformat(),
                "basis": "delay_expired",
                "notified_at": rfc3339(instant),
            }
        for k, v in want.items():
            if notified.get(k) != v:
                problems.append(f"NOTIFIED {k} {notified.get(k)} != {v}")
            if block.get(k) != v:
                problems.append(f"notification.{k} {block.get(k)} != {v}")
        info["notified_on"], info["basis"] = want["notified_on"], want["basis"]
    if problems:
        res.fail("notification", "; ".join(problems))
    else:
        res.ok(
            "notification",
            f"{info.get('notified_on') or 'not notified yet'} "
            f"({info.get('basis') or '-'}) under {NOTIFICATION_RULE[0]}",
        )
    on = info.get("notified_on")
    if on is None:
        if block.get("appeal_deadline"):
            res.fail("appeal_deadline", "a deadline without a notification")
        else:
            res.skip("appeal_deadline", "not notified yet")
        return
    dl = appeal(date.fromisoformat(on))
    if dl is None:
        res.skip("appeal_deadline", "not checked (the holidays package is not installed)")
        info["appeal_deadline"] = block.get("appeal_deadline")
        return
    info["appeal_deadline"] = dl.isoformat()
    if block.get("appeal_deadline") == dl.isoformat() and block.get("appeal_rule") == APPEAL_RULE:
        res.ok("appeal_deadline", f"{dl.isoformat()} under {APPEAL_RULE}")
    else:
        res.fail("appeal_deadline", f"file says {block.get('appeal_deadline')}, rule gives {dl}")


# --- output ---------------------------------------------------------------------------------------
def render(
    results: list[Result], info: dict[str, Any], lang: str, pinned_key: bool, pinned_root: bool
) -> str:
    fr = lang == "fr"
    failed = [r.name for r in results if r.status == "fail"]
    out = []
    if failed:
        out.append(
            (
                "VERDICT : la preuve N'EST PAS VALIDE (contrôles en échec : "
                if fr
                else "VERDICT: the proof is NOT VALID (failed checks: "
            )
            + ", ".join(failed)
            + ")."
        )
    else:
        out.append("VERDICT : la preuve est VALIDE." if fr else "VERDICT: the proof is VALID.")
    if info.get("document_id"):
        out.append(f"Document : {info['document_id']} ({info.get('document_type')})")
    if info.get("notified_on"):
        out.append(
            f"Notifié le {info['notified_on']} ({info['basis']}) ; recours CNDA jusqu'au "
            f"{info.get('appeal_deadline')} inclus, sauf demande d'aide juridictionnelle "
            "(présentée dans les 15 jours, elle suspend le délai)."
            if fr
            else f"Notified on {info['notified_on']} ({info['basis']}); CNDA appeal until the end "
            f"of {info.get('appeal_deadline')}, absent a legal-aid request (made within 15 "
            "days, it suspends the delay)."
        )
    if not pinned_key:
        out.append(
            "Attention : clé du journal non épinglée (--log-key) : confiance à la "
            "première utilisation."
            if fr
            else "Note: log key not pinned (--log-key): trust on first use."
        )
    if not pinned_root:
        out.append(
            "Attention : racine de confiance non épinglée (--trust-root) : confiance à "
            "la première utilisation."
            if fr
            else "Note: trust root not pinned (--trust-root): trust on first use."
        )
    mark = {"pass": "OK  ", "fail": "ÉCHEC" if fr else "FAIL", "skipped": "--  "}
    for r in results:
        out.append(f"  [{mark[r.status]}] {r.name}: {r.detail}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Verify an OFPRA vault proof file offline.")
    p.add_argument("file")
    p.add_argument("--log-key", default=None, help="pinned log verifier key (C2SP vkey)")
    p.add_argument("--trust-root", default=None, help="pinned trust anchor PEM file")
    p.add_argument("--witness-key", action="append", default=[], help="witness vkey")
    p.add_argument("--json", action="store_true")
    p.add_argument("--lang", choices=("fr", "en"), default="fr")
    a = p.parse_args(argv)
    with open(a.file, "rb") as f:
        data = f.read()
    root = None
    if a.trust_root:
        with open(a.trust_root, "rb") as f:
            root = f.read()
    res, info = verify(data, a.log_key, root, a.witness_key)
    results = res.all()
    failed = [r.name for r in results if r.status == "fail"]
    if a.json:
        print(
            json.dumps(
                {
                    "ok": not failed,
                    "failed": failed,
                    **info,
                    "log_key_pinned": a.log_key is not None,
                    "trust_root_pinned": root is not None,
                    "checks": [r.__dict__ for r in results],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        print(render(results, info, a.lang, a.log_key is not None, root is not None))
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
