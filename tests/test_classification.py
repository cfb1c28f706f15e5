"""The classification schedule: packaged defaults, a center's own file, broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.classification import RetentionCode, Trigger, load_schedule
from archive.errors import ConfigError, InvalidInput

PACKAGED = Path(__file__).parents[1] / "archive" / "schedules" / "jgjt495-default.toml"


def test_packaged_schedule_covers_the_four_business_lines_and_is_marked_as_defaults() -> None:
    """Given no ARCHIVE_SCHEDULE, when loaded, then GJ/TQ/DK/ZJ are there and the file says it is a default."""
    s = load_schedule()
    assert set(s.categories) == {"GJ", "TQ", "DK", "ZJ"}
    assert {t.category for t in s.types.values()} == {"GJ", "TQ", "DK", "ZJ"}
    assert s.is_default and "须与" in s.basis
    assert "DEFAULTS TO BE CHECKED" in PACKAGED.read_text(encoding="utf-8")
    assert all(t.required for t in s.types.values())


def test_loan_files_wait_for_settlement_and_funds_for_fiscal_year_end() -> None:
    """Given the packaged schedule, when it is loaded, then every DK type waits for 贷款结清, ZJ02 is kept ten years
    and the fiscal-year-end trigger counts from the next day."""
    s = load_schedule()
    assert {t.trigger for t in s.types.values() if t.category == "DK"} == {Trigger.LOAN_SETTLED}
    assert s.business_type("ZJ02").retention is RetentionCode.YEARS_10
    assert s.triggers[Trigger.FISCAL_YEAR_END].counting == "next_day"


def test_unknown_business_type_is_a_clear_input_error() -> None:
    """Given the packaged schedule, when an unknown business type is looked up, then InvalidInput
    unknown_business_type naming it."""
    with pytest.raises(InvalidInput) as e:
        load_schedule().business_type("XX99")
    assert e.value.code == "unknown_business_type" and "XX99" in e.value.message


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "center.toml"
    text = PACKAGED.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new", "field", "reason"), [
    ('retention = "D30"', 'retention = "D20"', "types.GJ01.retention", "Y"),
    ('trigger = "ACCOUNT_CLOSED"', 'trigger = "SOMEDAY"', "types.GJ01.trigger", "BUSINESS_CLOSED"),
    ('required = ["application_form", "approval_form"]', 'required = ["no_such_material"]',
     "types.GJ01.required", "no_such_material"),
    ('category = "GJ"', 'category = "QQ"', "types.GJ01.category", "QQ"),
    ('counting = "next_day"', 'counting = "whenever"', "triggers.FISCAL_YEAR_END.counting", "next_year"),
    ('name = "归集专户设立"', 'name = "归集专户设立"\ncolour = "red"', "types.GJ01.colour", "Extra"),
])
def test_broken_schedule_names_file_field_and_reason(tmp_path: Path, old: str, new: str, field: str,
                                                     reason: str) -> None:
    """Given a center's file with one mistake, when loaded, then the error names the file, field and reason."""
    path = _broken(tmp_path, old, new)
    with pytest.raises(ConfigError) as e:
        load_schedule(path)
    assert e.value.code == "schedule_invalid"
    assert e.value.detail["file"] == str(path)
    assert e.value.detail["field"] == field
    assert reason in e.value.detail["reason"]
    assert str(path) in e.value.message and field in e.value.message


def test_schedule_that_is_not_toml_or_missing(tmp_path: Path) -> None:
    """Given a schedule file that is not TOML, or one that does not exist, when it is loaded, then ConfigError saying
    TOML or cannot read."""
    bad = tmp_path / "bad.toml"
    bad.write_text("schema = 1\nversion = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="TOML"):
        load_schedule(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_schedule(tmp_path / "missing.toml")


def test_center_schedule_with_its_own_version_is_used(tmp_path: Path) -> None:
    """Given a center's own schedule with its own version label, when it is loaded, then that version is used."""
    path = _broken(tmp_path, 'version = "2026.1-default"', 'version = "center-2027"')
    assert load_schedule(path).version == "center-2027"
