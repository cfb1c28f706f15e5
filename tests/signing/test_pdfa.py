"""PDF/A check: pikepdf's own parser warnings count, warnings other threads raise meanwhile do not."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import pikepdf.pdfa._content as pdfa_content
import pytest

from signing.pdfa import pdfa_problems


class _Checker:
    """pikepdf's content-stream checker, running ``before`` first on every stream it checks."""

    def __init__(self, real: Any, before: Any) -> None:
        self._real, self._before = real, before

    def check(self, stream: Any) -> Any:
        self._before()
        return self._real.check(stream)


def _before_each_stream(monkeypatch: pytest.MonkeyPatch, before: Any) -> None:
    real = pdfa_content.content_checker
    monkeypatch.setattr(pdfa_content, "content_checker", lambda limits: _Checker(real(limits), before))


def _leak_a_file_in_another_thread(path: Path) -> None:
    def leak() -> None:
        f = open(path, "rb")  # noqa: SIM115 - left open on purpose: collected unclosed, it warns
        del f

    t = threading.Thread(target=leak)
    t.start()
    t.join()


def test_a_warning_from_another_thread_during_the_check_is_not_a_violation(
        rendition: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Given another thread leaves a stored file unclosed (ResourceWarning) while each content stream is checked,
    When the rendition is checked for PDF/A-2b,
    Then it has no problems: the other thread's warning is not this document's content-stream violation."""
    stored = tmp_path / "original.bin"
    stored.write_bytes(b"stored object")
    _before_each_stream(monkeypatch, lambda: _leak_a_file_in_another_thread(stored))
    assert pdfa_problems(rendition) == []


def test_a_warning_from_the_checking_thread_still_denies_the_stream(rendition: bytes,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Given pikepdf's content parser warns while checking a stream (in the checking thread),
    When the rendition is checked,
    Then the stream is denied as before: only other threads' warnings are kept out."""
    _before_each_stream(monkeypatch, lambda: warnings.warn("unexpected token", UserWarning, stacklevel=1))
    problems = pdfa_problems(rendition)
    assert problems and all("content stream: unexpected token" in p for p in problems)
