"""pikepdf's PDF/A role schemas, answered first by a compiled validator.

pikepdf's PDF/A validator checks every object it walks against a JSON Schema of its role with the ``jsonschema``
package, which resolves each ``$ref`` anew on every call: about a third of building a 3-page rendition, and of every
PDF/A check after it (the signing increment's, the storage sweeps'), went there (issue 17). ``jsonschema_rs``
compiles the same schemas once. :func:`install` makes pikepdf ask it first: an object it finds valid has no finding
(the stock path would have found none either); an object it finds invalid goes through pikepdf's own check, so
every finding - rule, place and message - is pikepdf's as before. The two validators disagree only where their
regular-expression dialects do (``$`` before a final newline), and then the compiled one is the stricter, which
costs time, not findings; tests/signing/test_pdfa_schemas.py holds them to the same answer object by object.

Installed when a module that validates PDF/A is imported (signing.rendition, signing.pdfa). If pikepdf's internals
are not the ones this was written for, it is not installed and pikepdf validates as it ships.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import jsonschema_rs
from pikepdf.pdfa import _schemas

log = logging.getLogger(__name__)

_compiled: dict[tuple[str, str], Any] = {}
_compiling = threading.Lock()
_stock = getattr(_schemas.SchemaSet, "check", None)


def _validator(schemas: _schemas.SchemaSet, role: str) -> Any:
    key = (schemas._flavour_file, role)
    validator = _compiled.get(key)
    if validator is None:
        with _compiling:
            validator = _compiled.get(key)
            if validator is None:
                files = [_schemas.COMMON, schemas._flavour_file]
                registry = jsonschema_rs.Registry([(_schemas.BASE_URI + f, _schemas._load_schema(f)) for f in files])
                validator = jsonschema_rs.Draft202012Validator({"$ref": schemas._role_uri(role)}, registry=registry)
                _compiled[key] = validator
    return validator


def check(self: _schemas.SchemaSet, role: str, shallow: Any, ctx: Any, where: str) -> bool:
    """``SchemaSet.check``: valid by the compiled schema, or pikepdf's own check with its findings."""
    try:
        if _validator(self, role).is_valid(shallow):
            return True
    except (ValueError, TypeError, OverflowError):  # a value it cannot take (bytes, a lone surrogate): pikepdf decides
        pass
    assert _stock is not None
    return bool(_stock(self, role, shallow, ctx, where))


def install() -> bool:
    """Make pikepdf's PDF/A validator ask the compiled schemas first; False (and pikepdf as it ships) if its
    internals are not the expected ones."""
    needed = [hasattr(_schemas, n) for n in ("BASE_URI", "COMMON", "_load_schema")]
    needed += [hasattr(_schemas.SchemaSet, n) for n in ("check", "_role_uri", "for_flavour")]
    if all(needed):
        needed.append(hasattr(_schemas.SchemaSet.for_flavour("2b"), "_flavour_file"))
    if not all(needed):
        log.info("pikepdf's PDF/A schemas are not laid out as expected: validating with jsonschema only")
        uninstall()
        return False
    _schemas.SchemaSet.check = check  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    """pikepdf's own ``SchemaSet.check`` again (tests compare the two)."""
    if _stock is not None:
        _schemas.SchemaSet.check = _stock  # type: ignore[method-assign]


installed = install()
