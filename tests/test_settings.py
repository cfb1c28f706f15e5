"""Settings: embedded defaults with no configuration, clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.errors import ConfigError
from archive.settings import load_settings


def test_no_configuration_means_embedded_defaults() -> None:
    """Given no ARCHIVE_* variable, when settings are loaded, then the embedded defaults: SQLite and filesystem
    storage under archive-data and the default code template."""
    s = load_settings()
    assert s.catalogue_url == "sqlite:///archive-data/catalogue.db"
    assert s.storage == "filesystem" and s.objects_path == Path("archive-data/objects")
    assert s.archival_code_template == "{全宗号}-YW·{年度}-{保管期限}-{类别}-{件号:06d}"


def test_environment_overrides_with_archive_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Given ARCHIVE_DATA_DIR and ARCHIVE_FONDS_CODE set, when settings are loaded, then the catalogue moves into
    that directory and the fonds code is taken."""
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ARCHIVE_FONDS_CODE", "J123")
    s = load_settings()
    assert s.catalogue_url == f"sqlite:///{tmp_path / 'catalogue.db'}" and s.fonds_code == "J123"


@pytest.mark.parametrize(("var", "value"), [("ARCHIVE_STORAGE", "floppy"), ("ARCHIVE_PORT", "eighty"),
                                            ("ARCHIVE_FONDS_CODE", "../etc"), ("ARCHIVE_API_RATE", "0")])
def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    """Given an ARCHIVE_* variable with a bad value, when settings are loaded, then ConfigError invalid_setting
    naming the variable."""
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert var in e.value.message and e.value.code == "invalid_setting"


def test_list_settings_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a comma-separated list setting with spaces and a trailing comma, when settings are loaded, then the
    trimmed names, and unset numbers stay None."""
    monkeypatch.setenv("ARCHIVE_WATERMARK_CLIENTS", " branch-portal, wechat ,")
    monkeypatch.setenv("ARCHIVE_API_RATE", "50")
    s = load_settings()
    assert s.watermark_clients == ["branch-portal", "wechat"] and s.api_rate == 50 and s.api_burst is None


def test_every_setting_is_documented_in_the_readme() -> None:
    """Given the settings model, when README.md is searched, then every ARCHIVE_* variable is documented."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    from archive.settings import Settings

    missing = [f"ARCHIVE_{name.upper()}" for name in Settings.model_fields if f"ARCHIVE_{name.upper()}" not in readme]
    assert missing == []
