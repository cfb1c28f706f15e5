"""`archive index rebuild`, `archive index status` and `archive worker --once` on an embedded set-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.cli import app
from archive.commands.common import ensure_fonds
from archive.context import Context
from archive.settings import get_settings, load_settings
from search.base import SearchQuery, Visibility
from tests.factories import add_case

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A migrated embedded data directory holding two cases whose outbox rows are still pending."""
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(tmp_path / "data"))
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    ctx = Context.build(load_settings(data_dir=tmp_path / "data"))
    ensure_fonds(ctx)
    add_case(ctx, "YW000001", name="张三")
    add_case(ctx, "YW000002", name="李四", id_number="110105199002020046")
    ctx.close()
    return tmp_path / "data"


def _search(data_dir: Path, text: str) -> list[str]:
    ctx = Context.build(load_settings(data_dir=data_dir))
    try:
        return [h.serial for h in ctx.index.search(SearchQuery(text=text), Visibility.everything()).hits]
    finally:
        ctx.close()


def test_status_reports_the_backlog_then_worker_once_drains_it(data_dir: Path) -> None:
    """Given two pending changes, When `archive index status`, Then backlog 2; after `archive worker --once`,
    Then backlog 0 and both cases are searchable."""
    r = runner.invoke(app, ["index", "status"])
    assert r.exit_code == 0, r.output
    assert "embedded" in r.output and "待索引（积压）" in r.output and "│ 2" in r.output
    r = runner.invoke(app, ["worker", "--once"])
    assert r.exit_code == 0, r.output
    assert "已索引 2 条待办" in r.output
    r = runner.invoke(app, ["index", "status"])
    assert "│ 0" in r.output
    assert _search(data_dir, "张三") == ["YW000001"]


def test_rebuild_indexes_the_whole_catalogue_and_says_how_many(data_dir: Path) -> None:
    """Given a catalogue of two cases and no index, When `archive index rebuild`, Then both are searchable."""
    r = runner.invoke(app, ["index", "rebuild"])
    assert r.exit_code == 0, r.output
    assert "检索索引已重建并切换（embedded）：2 件" in r.output
    assert _search(data_dir, "李四") == ["YW000002"]


def test_status_of_an_unreachable_elasticsearch_exits_1_with_the_reason(data_dir: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Given ARCHIVE_INDEX=elasticsearch pointing nowhere, When `archive index status`, Then exit 1, the backlog
    and the index_unavailable code are shown, no traceback."""
    monkeypatch.setenv("ARCHIVE_INDEX", "elasticsearch")
    monkeypatch.setenv("ARCHIVE_ES_URL", "http://127.0.0.1:9")
    get_settings.cache_clear()  # the fixture's `db upgrade` read the settings before these variables
    r = runner.invoke(app, ["index", "status"])
    assert r.exit_code == 1, r.output
    assert "index_unavailable" in r.output and "Traceback" not in r.output
