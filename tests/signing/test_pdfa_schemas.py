"""pikepdf's PDF/A check asks compiled schemas first (signing.pdfa_schemas): it finds exactly what pikepdf as it
ships finds, object by object and file by file, valid and non-conforming files alike."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pikepdf
import pikepdf.pdfa as pdfa
import pytest
from pikepdf.pdfa import _schemas

import signing.pdfa_schemas as fast
from signing.certificates import KeySigner
from signing.pades import Seal, sign_pdf
from signing.pdfa import pdfa_problems
from signing.rendition import SourceDocument, build_rendition
from tests.signing.support import jpeg, jpeg_documents, metadata, png, tiff


@contextmanager
def _stock() -> Iterator[None]:
    fast.uninstall()
    try:
        yield
    finally:
        assert fast.install()


@contextmanager
def _recorded() -> Iterator[list[tuple[str, Any]]]:
    """Every (role, shallow object) the validator checks meanwhile."""
    seen: list[tuple[str, Any]] = []
    plain = _schemas.SchemaSet.check

    def check(self: _schemas.SchemaSet, role: str, shallow: Any, ctx: Any, where: str) -> bool:
        seen.append((role, shallow))
        return plain(self, role, shallow, ctx, where)

    _schemas.SchemaSet.check = check  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        _schemas.SchemaSet.check = plain  # type: ignore[method-assign]


def _pdf(build: Any) -> bytes:
    with pikepdf.new() as pdf:
        build(pdf)
        buf = io.BytesIO()
        pdf.save(buf)
        return buf.getvalue()


def _text_page(pdf: pikepdf.Pdf) -> None:
    """A page whose text uses Helvetica, not embedded (PDF/A: every font embedded)."""
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    page = pikepdf.Page(pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 200, 200],
                                           Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))))
    page.obj.Contents = pdf.make_stream(b"BT /F1 12 Tf 20 100 Td (hello) Tj ET")
    pdf.pages.append(page)


def _scripted(pdf: pikepdf.Pdf) -> None:
    _text_page(pdf)
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
    pdf.Root.Foo = pikepdf.Name.Bar  # a key PDF does not define


def _lzw(pdf: pikepdf.Pdf) -> None:
    _text_page(pdf)
    pdf.pages[0].obj.Contents.Filter = pikepdf.Name.LZWDecode  # PDF/A forbids LZW
    pdf.pages[0].obj.Annots = pdf.make_indirect(pikepdf.Array([pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 10, 10], F=0,
        A=pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("calc.exe")))]))


def _corpus(signer: KeySigner) -> list[bytes]:
    mixed = [SourceDocument("申请表", "image/png", data=png("RGBA")),
             SourceDocument("流水", "image/tiff", data=tiff(2)),
             SourceDocument("收据", "image/jpeg", data=jpeg(seed=7))]
    rendition = build_rendition(jpeg_documents(3), metadata())
    return [rendition, build_rendition(mixed, metadata(title="混合材料")),
            sign_pdf(rendition, signer, seal=Seal(png("RGBA", (200, 200)))),
            _pdf(_text_page), _pdf(_scripted), _pdf(_lzw)]


def _findings(data: bytes) -> list[str]:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return [f"{f.kind} {f}" for f in pdfa.check(pdf, "2b").findings]


def test_it_is_installed_when_signing_validates() -> None:
    assert fast.installed
    assert _schemas.SchemaSet.check is fast.check


def test_every_file_gets_the_findings_pikepdf_as_it_ships_gives(signer: KeySigner) -> None:
    """Given conforming renditions (signed too) and files that break PDF/A in several ways, Then the findings -
    rules, places, messages - and signing.pdfa's problems are the same with and without the compiled schemas."""
    corpus = _corpus(signer)
    ours = [(_findings(d), pdfa_problems(d)) for d in corpus]
    with _stock():
        stock = [(_findings(d), pdfa_problems(d)) for d in corpus]
    assert ours == stock
    assert ours[0] == ([], []) and ours[2][1] == []  # the renditions conform
    assert all(found for found, _ in ours[3:])  # each broken file has findings


def _mutations(shallow: Any) -> Iterator[Any]:
    """The object itself and variants of it a hostile or broken file could hold: each key removed, each value
    replaced by a value of another type, keys PDF does not define added."""
    yield shallow
    if isinstance(shallow, list):
        yield [*shallow, "u:x"]
        yield shallow[:-1]
        return
    if not isinstance(shallow, dict):
        return
    for key in shallow:
        yield {k: v for k, v in shallow.items() if k != key}
        for value in ("u:x", "b:00", "/Name", "/LZWDecode", "3 0 R", 0, -1, 2.5, True, None, [], {}, ["/Fit"]):
            yield {**shallow, key: value}
    for extra in ({"/Foo": "u:x"}, {"/JS": "u:app.alert(1)"}, {"/AA": {}}, {"/S": "/JavaScript"},
                  {"/Version": "/2.0"}, {"/Filter": "/JBIG2Decode"}):
        yield {**shallow, **extra}


def test_the_compiled_schemas_agree_with_jsonschema_on_every_object_and_its_mutations(signer: KeySigner) -> None:
    """Given every object the validator met in the corpus, and for each its mutations, Then the compiled schema
    and pikepdf's jsonschema validator call the same ones valid (the compiled one may never pass what jsonschema
    fails: that finding would be lost)."""
    with _recorded() as seen:
        for data in _corpus(signer):
            _findings(data)
    schemas = _schemas.SchemaSet.for_flavour("2b")
    roles = {role for role, _ in seen}
    assert len(roles) >= 15, roles
    checked, disagreed = 0, []
    for role, shallow in {(r, repr(s)): (r, s) for r, s in seen}.values():
        for variant in _mutations(shallow):
            compiled = fast._validator(schemas, role).is_valid(variant)
            stock = not list(schemas._validator(role).iter_errors(variant))
            checked += 1
            if compiled != stock:
                disagreed.append((role, variant, compiled, stock))
    assert checked > 2000
    assert disagreed == []


@pytest.mark.parametrize("value", ["u:\udcff", b"\x00", 2**80, float("nan")])
def test_a_value_the_compiled_validator_cannot_take_is_judged_by_pikepdf(value: object) -> None:
    """pikepdf's shallow objects hold JSON values; should one ever hold something else (bytes, a string with a lone
    surrogate, which jsonschema_rs refuses to encode), pikepdf's own check decides, with its findings, and nothing
    raises."""
    class Denials(list[tuple[Any, ...]]):
        def deny(self, *args: Any) -> None:
            self.append(args)

    schemas = _schemas.SchemaSet.for_flavour("2b")
    shallow = {"/Type": "/Catalog", "/Pages": "2 0 R", "/Lang": value}
    stock, ours = Denials(), Denials()
    with _stock():
        expected = schemas.check("Catalog", shallow, stock, "catalog")
    assert schemas.check("Catalog", shallow, ours, "catalog") == expected
    assert ours == stock


def test_without_the_expected_internals_pikepdf_validates_as_it_ships(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(_schemas.SchemaSet, "_role_uri")
    try:
        assert fast.install() is False
        assert _schemas.SchemaSet.check is not fast.check
    finally:
        monkeypatch.undo()
        assert fast.install()
