"""Archival renditions, signatures and fixity.

rendition (PDF/A-2b from originals), pades (PAdES B-B/B-T with pyhanko), tsa (RFC 3161 client and a
local development TSA), validate (independent verification report), pdfa (PDF/A-2b of signed files),
fixity (SHA-256 + SM3 in one pass), certificates (development PKI, loading the center's signer),
eep (DA/T 48 encapsulation packages), errors (the package's own, with a kind). The commands `archive tsa` and
`archive verify` live in archive/commands/signing.py; this package imports nothing from archive/.
"""
