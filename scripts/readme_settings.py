"""Rewrite the configuration table in README.md from the Settings object: .venv/bin/python scripts/readme_settings.py"""

from __future__ import annotations

from pathlib import Path

from archive.settings import Settings

README = Path(__file__).parents[1] / "README.md"
HEADER = "| variable | default | meaning |"


def rows() -> list[str]:
    out = []
    for name, f in Settings.model_fields.items():
        default = f.default_factory() if f.default_factory else getattr(f.default, "value", f.default)  # type: ignore[call-arg]
        shown = f"`{default}`" if default not in (None, "", []) else "—"
        out.append(f"| `ARCHIVE_{name.upper()}` | {shown} | {f.description} |")
    return out


def main() -> None:
    lines = README.read_text(encoding="utf-8").split("\n")
    start = lines.index(HEADER) + 2
    end = start
    while end < len(lines) and lines[end].startswith("| `ARCHIVE_"):
        end += 1
    lines[start:end] = rows()
    README.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
