"""Cryptography of the vault: recipes only, no primitive is exported.

* :mod:`vault.crypto.envelope` -- streaming encryption of documents (``OVB1``).
* :mod:`vault.crypto.keys` -- key ring, applicant and data key wrapping, sealed secrets.
* :mod:`vault.crypto.passwords` -- Argon2id password hashing.
* :mod:`vault.crypto.tokens` -- connection keys and bearer tokens.

Every failed decryption or unwrap raises :class:`vault.errors.DecryptionError`, with
one opaque message; key ring problems raise :class:`vault.errors.ConfigurationError`.
Formats and reasons: ``docs/crypto.md``.
"""
