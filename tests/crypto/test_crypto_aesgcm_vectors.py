"""Known-answer tests: the AES-256-GCM primitive under the envelope is wired right.

Origins:

* Wycheproof ``testvectors/aes_gcm_test.json`` (C2SP/wycheproof, formerly
  google/wycheproof, source version 0.8r12), test group ivSize=96, keySize=256,
  tagSize=128; ``tcId`` given for each vector, copied verbatim.
* "The Galois/Counter Mode of Operation (GCM)", McGrew & Viega, revised submission
  to NIST (2005), Appendix B, Test Cases 14 and 16 (the AES-256 cases).
"""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# (source, key, iv, aad, msg, ct, tag)
VALID = [
    (
        "wycheproof tcId 77",
        "51e4bf2bad92b7aff1a4bc05550ba81df4b96fabf41c12c7b00e60e48db7e152",
        "4f07afedfdc3b6c2361823d3",
        "",
        "be3308f72a2c6aed",
        "cf332a12fdee800b",
        "602e8d7c4799d62c140c9bb834876b09",
    ),
    (
        "wycheproof tcId 83",
        "cdccfe3f46d782ef47df4e72f0c02d9c7f774def970d23486f11a57f54247f17",
        "376187894605a8d45e30de51",
        "956846a209e087ed",
        "e28e0e9f9d22463ac0e42639b530f42102fded75",
        "feca44952447015b5df1f456df8ca4bb4eee2ce2",
        "082e91924deeb77880e1b1c84f9b8d30",
    ),
    (
        "wycheproof tcId 84",
        "f32364b1d339d82e4f132d8f4a0ec1ff7e746517fa07ef1a7f422f4e25a48194",
        "5a86a50a0e8a179c734b996d",
        "ab2ac7c44c60bdf8228c7884adb20184",
        "43891bccb522b1e72a6b53cf31c074e9d6c2df8e",
        "43dda832e942e286da314daa99bef5071d9d2c78",
        "c3922583476ced575404ddb85dd8cd44",
    ),
    (
        "wycheproof tcId 86",
        "5b1d1035c0b17ee0b0444767f80a25b8c1b741f4b50a4d3052226baa1c6fb701",
        "d61040a313ed492823cc065b",
        "",
        "d096803181beef9e008ff85d5ddc38ddacf0f09ee5f7e07f1e4079cb64d0dc8f"
        "5e6711cd4921a7887de76e2678fdc67618f1185586bfea9d4c685d50e4bb9a82",
        "c7d191b601f86c28b6a1bdef6a57b4f6ee3ae417bc125c381cdf1c4dac184ed1"
        "d84f1196206d62cad112b038845720e02c061179a8836f02b93fa7008379a6bf",
        "f15612f6c40f2e0db6dc76fc4822fcfe",
    ),
    (
        "wycheproof tcId 92 (special case: tag all ones)",
        "00112233445566778899aabbccddeeff102132435465768798a9bacbdcedfe0f",
        "000000000000000000000000",
        "",
        "561008fa07a68f5c61285cd013464eaf",
        "23293e9b07ca7d1b0cae7cc489a973b3",
        "ffffffffffffffffffffffffffffffff",
    ),
    (
        "wycheproof tcId 93 (special case: tag all zeros)",
        "00112233445566778899aabbccddeeff102132435465768798a9bacbdcedfe0f",
        "ffffffffffffffffffffffff",
        "",
        "c6152244cea1978d3e0bc274cf8c0b3b",
        "7cb6fc7c6abc009efe9551a99f36a421",
        "00000000000000000000000000000000",
    ),
    (
        "GCM spec Test Case 14",
        "00" * 32,
        "00" * 12,
        "",
        "00" * 16,
        "cea7403d4d606b6e074ec5d3baf39d18",
        "d0d1c8a799996bf0265b98b5d48ab919",
    ),
    (
        "GCM spec Test Case 16",
        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        "76fc6ece0f4e1768cddf8853bb2d551b",
    ),
]

# Wycheproof tcIds 94-120 share key/iv/msg/ct and differ in a modified tag.
_K = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
_IV = "505152535455565758595a5b"
_CT = "b2061457c0759fc1749f174ee1ccadfa"
INVALID = [
    ("wycheproof tcId 94: flipped bit 0 in tag", "9de8fef6d8ab1bf1bf887232eab590dd"),
    ("wycheproof tcId 98: flipped bit 31 in tag", "9ce8fe76d8ab1bf1bf887232eab590dd"),
    ("wycheproof tcId 112: flipped bit 127 in tag", "9ce8fef6d8ab1bf1bf887232eab5905d"),
    ("wycheproof tcId 116: all bits of tag flipped", "631701092754e40e40778dcd154a6f22"),
    ("wycheproof tcId 117: tag changed to all zero", "00000000000000000000000000000000"),
    ("wycheproof tcId 118: tag changed to all 1", "ffffffffffffffffffffffffffffffff"),
]


@pytest.mark.parametrize(("source", "key", "iv", "aad", "msg", "ct", "tag"), VALID)
def test_aes256gcm_known_answers(
    source: str, key: str, iv: str, aad: str, msg: str, ct: str, tag: str
) -> None:
    aead = AESGCM(bytes.fromhex(key))
    sealed = aead.encrypt(bytes.fromhex(iv), bytes.fromhex(msg), bytes.fromhex(aad))
    assert sealed.hex() == ct + tag, source
    assert aead.decrypt(bytes.fromhex(iv), sealed, bytes.fromhex(aad)).hex() == msg, source
    # the *_into variants the benchmark compares against give the same bytes
    out = bytearray(len(sealed))
    aead.encrypt_into(bytes.fromhex(iv), bytes.fromhex(msg), bytes.fromhex(aad), out)
    assert out.hex() == ct + tag, source


@pytest.mark.parametrize(("source", "tag"), INVALID)
def test_aes256gcm_modified_tags_rejected(source: str, tag: str) -> None:
    aead = AESGCM(bytes.fromhex(_K))
    with pytest.raises(InvalidTag):
        aead.decrypt(bytes.fromhex(_IV), bytes.fromhex(_CT + tag), b"")


def test_wycheproof_modified_tag_group_base_is_valid() -> None:
    """The unmodified tag of tcIds 94-120 (reconstructed by undoing tcId 94's flip)."""
    aead = AESGCM(bytes.fromhex(_K))
    msg = bytes.fromhex("202122232425262728292a2b2c2d2e2f")
    assert aead.encrypt(bytes.fromhex(_IV), msg, b"").hex() == (
        _CT + "9ce8fef6d8ab1bf1bf887232eab590dd"
    )
