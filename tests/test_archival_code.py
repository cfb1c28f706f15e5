"""档号: template, parser, consistency check, and gap-free allocation under concurrency."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from archive.archival_code import CodeParts, CodeRule, allocate
from archive.catalogue.models import ArchivalCodeSequence
from archive.context import Context
from archive.errors import ConfigError, Conflict, InvalidInput
from archive.settings import DEFAULT_CODE_TEMPLATE

RULE = CodeRule(DEFAULT_CODE_TEMPLATE)


def test_default_template_formats_and_parses_back() -> None:
    """Given the default template, when the parts of an item are formatted, then J001-YW·2024-D30-TQ-000123, which
    parses back to the same parts."""
    parts = CodeParts("J001", 2024, "D30", "TQ", 123)
    code = RULE.format(parts)
    assert code == "J001-YW·2024-D30-TQ-000123"
    assert RULE.parse(code) == parts


@pytest.mark.parametrize(("code", "part"), [
    ("J001-YW·2024-D30-TQ-00012", "件号"),
    ("J001-YW·2024-D20-TQ-000123", "保管期限"),
    ("J001-YW·24-D30-TQ-000123", "年度"),
    ("J001-WS·2024-D30-TQ-000123", "年度"),
    ("J001-YW·2024-D30-tq-000123", "类别"),
    ("J001-YW·2024-D30-TQ-000000", "件号"),
    ("", "全宗号"),
])
def test_malformed_code_names_the_wrong_part(code: str, part: str) -> None:
    """Given a 档号 with one wrong segment, when parsed, then the error says which segment."""
    with pytest.raises(InvalidInput) as e:
        RULE.parse(code)
    assert e.value.code == "invalid_archival_code"
    assert e.value.detail["part"] == part


def test_check_lists_parts_that_disagree_with_the_item() -> None:
    """Given a 档号, when it is checked against the item's own parts, then nothing if they agree, else one problem
    per disagreeing part (年度, 保管期限)."""
    code = "J001-YW·2024-D30-TQ-000123"
    assert RULE.check(code, CodeParts("J001", 2024, "D30", "TQ", 123)) == []
    problems = RULE.check(code, CodeParts("J001", 2025, "D10", "TQ", 123))
    assert len(problems) == 2 and problems[0].startswith("年度") and problems[1].startswith("保管期限")


@pytest.mark.parametrize(("template", "reason"), [
    ("{全宗号}-{年度}-{保管期限}-{类别}", "件号"),
    ("{全宗号}-{年度}-{保管期限}-{类别}-{件号:6}", "0Nd"),
    ("{全宗号}-{年度}-{保管期限}-{类别}-{件号}-{网点}", "网点"),
    ("{全宗号}-{年度}-{保管期限}-{类别}-{件号", "ARCHIVE_ARCHIVAL_CODE_TEMPLATE"),
])
def test_bad_template_is_a_config_error_naming_the_setting(template: str, reason: str) -> None:
    """Given a malformed archival code template, when a rule is made from it, then ConfigError saying why and naming
    ARCHIVE_ARCHIVAL_CODE_TEMPLATE."""
    with pytest.raises(ConfigError) as e:
        CodeRule(template)
    assert reason in e.value.message and e.value.detail["setting"] == "ARCHIVE_ARCHIVAL_CODE_TEMPLATE"


def test_template_without_padding_accepts_any_width() -> None:
    """Given a template with an unpadded 件号, when numbers are formatted and parsed, then any width goes both ways."""
    rule = CodeRule("{全宗号}-{类别}-{年度}-{保管期限}-{件号}")
    assert rule.format(CodeParts("J9", 2024, "Y", "DK", 7)) == "J9-DK-2024-Y-7"
    assert rule.parse("J9-DK-2024-Y-1234567").number == 1234567


def test_numbers_run_per_fonds_year_retention_and_category(ctx: Context) -> None:
    """Given an empty catalogue, when numbers are allocated, then they run 1, 2, 3 within one fonds, year, period and
    category, and start again at 1 for another period or year."""
    with ctx.catalogue.session() as s:
        got = [allocate(s, RULE, "J001", 2024, "D30", "TQ").number for _ in range(3)]
        other = allocate(s, RULE, "J001", 2024, "D10", "TQ").number
        next_year = allocate(s, RULE, "J001", 2025, "D30", "TQ").number
    assert got == [1, 2, 3] and other == 1 and next_year == 1


def test_rolled_back_filing_leaves_no_gap(ctx: Context) -> None:
    """Given a filing that fails after taking a number, when the next one files, then it gets the same number."""
    with pytest.raises(RuntimeError), ctx.catalogue.session() as s:
        assert allocate(s, RULE, "J001", 2024, "D30", "GJ").number == 1
        raise RuntimeError("filing failed after allocation")
    with ctx.catalogue.session() as s:
        assert allocate(s, RULE, "J001", 2024, "D30", "GJ").number == 1


def test_number_exhaustion_is_a_clear_conflict(ctx: Context) -> None:
    """Given a one-digit 件号 whose nine numbers are used, when a tenth is allocated, then Conflict
    archival_number_exhausted."""
    rule = CodeRule("{全宗号}-{年度}-{保管期限}-{类别}-{件号:01d}")
    with ctx.catalogue.session() as s:
        for _ in range(9):
            allocate(s, rule, "J001", 2024, "D30", "ZJ")
    with pytest.raises(Conflict) as e, ctx.catalogue.session() as s:
        allocate(s, rule, "J001", 2024, "D30", "ZJ")
    assert e.value.code == "archival_number_exhausted"


def test_sixteen_concurrent_allocators_get_no_duplicate_and_no_gap(ctx: Context) -> None:
    """Given 16 threads each filing 25 items in their own transactions, then numbers are exactly 1..400."""
    per_thread, threads = 25, 16
    results: list[int] = []
    errors: list[BaseException] = []
    lock, start = threading.Lock(), threading.Barrier(threads)

    def worker() -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                with ctx.catalogue.session() as s:
                    n = allocate(s, RULE, "J001", 2024, "D30", "DK").number
                with lock:
                    results.append(n)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors
    assert sorted(results) == list(range(1, threads * per_thread + 1))
    with ctx.catalogue.session() as s:
        row = s.scalar(select(ArchivalCodeSequence).where(ArchivalCodeSequence.category == "DK"))
        assert row is not None and row.last_number == threads * per_thread
