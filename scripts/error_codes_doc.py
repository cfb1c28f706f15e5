"""Rewrite docs/error-codes.md from archive/error_codes.py: .venv/bin/python scripts/error_codes_doc.py"""

from __future__ import annotations

from pathlib import Path

from archive.api.errors import KIND_STATUS
from archive.error_codes import markdown

DOC = Path(__file__).parents[1] / "docs" / "error-codes.md"


def main() -> None:
    DOC.write_text(markdown(KIND_STATUS), encoding="utf-8")


if __name__ == "__main__":
    main()
