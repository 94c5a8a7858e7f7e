"""PDF handling for the vault: input validation, PAdES sealing, seal validation.

Public surface:

* :func:`vault.pdf.validate.inspect_pdf` -- refuse what is not a clean, unencrypted,
  reasonably sized PDF before anything else touches it (DESIGN.md section 4, step 1).
* :class:`vault.pdf.seal.Sealer` -- the office's PAdES seal, built once per process
  (DESIGN.md section 4, step 2 and section 9 "pyHanko speed").
* :func:`vault.pdf.seal.validate_seal` -- the same checks an offline verifier makes.
* :func:`vault.pdf.pki.load_or_create_test_pki` -- the embedded profile's test PKI.
"""
