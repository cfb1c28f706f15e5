"""数据质量 in the console: the findings page, a finding's page with its actions, the figures, the nav entry."""

from __future__ import annotations

from collections.abc import Callable

from archive.audit import Actor
from archive.context import Context
from archive.dq import runs
from tests.dq.test_dq import BAD_ID, GOOD_ID, findings_of, seed_problems
from tests.web.html import UiClient


def test_findings_pages_for_archivists_and_auditors(ctx: Context, ui: Callable[..., UiClient]) -> None:
    """Given findings from a run, when an auditor opens 数据质量, then the nav has the entry, the list shows the rule,
    the finding's page shows the 证件号码 masked and no action forms; an archivist assigns and corrects it (a value
    the rule still rejects: 422 with the reason), a second archivist verifies it, the list downloads as XLSX;
    a clerk gets 403."""
    seed_problems(ctx)
    runs.run(ctx, Actor.system("t"), ["DQ-CA-001"])
    fid = findings_of(ctx, "DQ-CA-001")[0].id

    auditor = ui("audit01", ["auditor"], None)
    page = auditor.get("/ui/dq")
    assert page.status_code == 200 and 'href="/ui/dq"' in page.text and "DQ-CA-001" in page.text
    detail = auditor.get(f"/ui/dq/findings/{fid}")
    assert BAD_ID not in detail.text and BAD_ID[-4:] in detail.text and "更正并提交复核" not in detail.text
    stats = auditor.get("/ui/dq/stats")
    assert stats.status_code == 200 and "DQ-CA-001" in stats.text

    arch = ui("arch01", ["archivist"], None)
    assert BAD_ID in arch.get(f"/ui/dq/findings/{fid}").text
    r = arch.post(f"/ui/dq/findings/{fid}/assign", htmx=False, data={"owner": "归集科", "owner_kind": "department"},
                  follow_redirects=False)
    assert r.status_code == 303, r.text
    bad = arch.post(f"/ui/dq/findings/{fid}/correct", htmx=False,
                    data={"field": "applicant_id_number", "value": "123", "reason": "核对"})
    assert bad.status_code == 422 and "仍不符合规则" in bad.text
    ok = arch.post(f"/ui/dq/findings/{fid}/correct", htmx=False,
                   data={"field": "applicant_id_number", "value": GOOD_ID, "reason": "核对证件"},
                   follow_redirects=False)
    assert ok.status_code == 303
    second = ui("arch02", ["archivist"], None)
    assert second.post(f"/ui/dq/findings/{fid}/verify", htmx=False, follow_redirects=False).status_code == 303
    assert "已复核关闭" in second.get(f"/ui/dq/findings/{fid}").text
    x = second.get("/ui/dq/findings.xlsx")
    assert x.status_code == 200 and x.content[:2] == b"PK"

    clerk = ui("clerk01", ["clerk"])
    assert clerk.get("/ui/dq").status_code == 403
