"""Fixity: SHA-256 and SM3 in one streaming pass."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from signing.fixity import DigestingReader, Digests, Hasher, digest_bytes, digest_chunks, digest_stream

SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
SM3_ABCD_X16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_sm3_matches_the_gbt_32905_test_vectors() -> None:
    """Given the GB/T 32905 examples "abc" and "abcd"×16, When digested, Then SM3 equals the standard's values."""
    assert digest_bytes(b"abc").sm3 == SM3_ABC
    assert digest_bytes(b"abcd" * 16).sm3 == SM3_ABCD_X16


def test_sha256_matches_hashlib_and_size_is_counted() -> None:
    """Given "abc", When digested, Then SHA-256 is the FIPS 180 value and the size is 3 bytes."""
    assert digest_bytes(b"abc") == Digests(SHA256_ABC, SM3_ABC, 3)


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 1024 * 1024])
def test_streaming_equals_one_shot_for_any_chunk_size(chunk_size: int) -> None:
    """Given 3 MB of random bytes, When read as a stream in chunks of any size,
    Then both digests equal the one-shot digests and hashlib's SHA-256."""
    data = os.urandom(3 * 1024 * 1024 + 13) if chunk_size > 1 else os.urandom(10_000)
    expected = digest_bytes(data)
    assert digest_stream(io.BytesIO(data), chunk_size) == expected
    assert digest_chunks(data[i:i + chunk_size] for i in range(0, len(data), chunk_size)) == expected
    assert expected.sha256 == hashlib.sha256(data).hexdigest()


def test_empty_input_has_the_well_known_digests() -> None:
    """Given no bytes, When digested, Then SHA-256 and SM3 are the digests of the empty string."""
    d = digest_stream(io.BytesIO(b""))
    assert d.sha256 == hashlib.sha256(b"").hexdigest()
    assert d.sm3 == "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"
    assert d.size == 0


def test_digesting_reader_digests_what_its_consumer_reads() -> None:
    """Given a stream wrapped in DigestingReader, When a consumer copies it in odd-sized reads,
    Then the copy is identical and the reader's digests are those of the whole stream."""
    data = os.urandom(200_000)
    reader = DigestingReader(io.BytesIO(data))
    copy = io.BytesIO()
    while chunk := reader.read(12_345):
        copy.write(chunk)
    assert copy.getvalue() == data
    assert reader.digests() == digest_bytes(data)


def test_digests_can_be_read_twice() -> None:
    """Given a Hasher, When its digests are read twice, Then both reads agree (finalisation is cached)."""
    h = Hasher()
    h.update(b"abc")
    assert h.digests() == h.digests() == digest_bytes(b"abc")
