"""办结归档: the approval trail, the outcome and the closing time of a case, then filing it through
:func:`archive.filing.file_case` (the API's close route calls the same function).

The page shows first whether the checklist is complete; a refusal is shown where the form is, in plain words:
the failed 四性检测 items with what to fix and the report's number, or the missing materials with a way back
to the case. Filing takes a second or more: the button is disabled while it runs, and a second filing of the
same case is refused by the domain (case_not_open) anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_args

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from archive.api.deps import UnitOfWork, context
from archive.api.errors import reason, status_of
from archive.capture.cases import get_case
from archive.capture.documents import checklist
from archive.catalogue.models import ArchiveItem, Case
from archive.context import Context
from archive.errors import ERRORS, AnyError
from archive.filing import CloseIn, TrailStep, file_case
from archive.permissions import Permission, Principal
from archive.web.deps import require
from archive.web.render import is_htmx, render
from archive.web.routes import items

router = APIRouter(prefix="/ui", include_in_schema=False)
router.include_router(items.router)  # the 归档件 page, where a filing leads

ACTIONS: tuple[str, ...] = get_args(TrailStep.model_fields["action"].annotation)
OUTCOMES = {"approved": "办结", "rejected": "不予办理", "withdrawn": "撤回"}
BLANK_ROWS = 2  # empty trail rows offered for steps the business system did not send
MAX_ROWS = 50
LOCAL = "%Y-%m-%dT%H:%M"  # <input type="datetime-local">, in the center's zone
FIELD_NAMES = {"action": "环节", "person": "经办人", "at": "时间", "opinion": "意见", "outcome": "办结结果",
               "closed_at": "办结时间", "override_reason": "归档理由", "trail": "审批过程"}
# What a clerk can do about the GD items that refuse filings most often; others show the item's own detail.
FIX_HINTS = {
    "GD-1-1": "请重新上传该材料：存储中的文件与登记时的摘要不一致，如仍不一致请联系档案管理员检查存储。",
    "GD-1-2": "请在业务系统中缩短超长的著录项（如申请人、单位名称）后重新办结。",
    "GD-1-3": "请核对证件号码、手机号、统一社会信用代码、日期等的格式后重新办结。",
    "GD-1-4": "请核对业务类型、保管期限、办结结果等代码是否为分类方案中的取值。",
    "GD-1-5": "请核对受理时间、办结时间和审批过程的时间先后是否合理。",
    "GD-1-6": "请删除申请人、单位名称等著录项中的不可见字符或控制字符后重新办结。",
    "GD-1-7": "档号不符合规则：请联系档案管理员检查档号规则设置。",
    "GD-1-8": "请检查是否重复受理了同一笔业务，或重复上传了同一份材料。",
    "GD-1-9": "请重新上传文件属性异常的材料后再办结。",
    "GD-1-11": "请重新上传与登记信息不一致的材料后再办结。",
    "GD-2-1": "请检查材料是否全部上传成功，必要时重新上传。",
    "GD-2-2": "请检查材料是否全部上传成功，必要时重新上传。",
    "GD-2-4": "请补全必填的著录项（申请人、证件号码、经办人等）后重新办结。",
    "GD-2-6": "件号不连续：请联系档案管理员核对本类档案的件号后再归档。",
    "GD-2-7": "有材料的内容缺失：请重新上传该材料。",
    "GD-2-9": "请确认该业务类型属于归档范围，或联系档案管理员。",
    "GD-3-3": "请把格式不符合要求的材料重新扫描为 PDF、JPEG 或 TIFF 后替换。",
    "GD-3-4": "请把无法读取的材料重新扫描或从原系统重新导出后替换。",
    "GD-3-8": "请把格式不符合要求的材料重新扫描为 PDF、JPEG 或 TIFF 后替换。",
    "GD-4-2": "有材料检出病毒：请撤下该材料，用干净的设备重新扫描后上传。",
    "GD-4-7": "归档过程记录异常：请联系档案管理员检查审计记录。",
}


@dataclass
class FilingForm:
    """What the person entered (or what is offered), kept as text so a refused form comes back as typed."""

    rows: list[dict[str, str]]
    outcome: str = "approved"
    closed_at: str = ""
    override_reason: str = ""
    problems: dict[str, str] = field(default_factory=dict)  # field id → reason

    def padded(self) -> list[dict[str, str]]:
        return self.rows + [{"action": "", "person": "", "at": "", "opinion": ""}] * BLANK_ROWS


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    failed: list[dict[str, Any]] = field(default_factory=list)  # 四性检测 items, each with its hint
    report: int | None = None
    missing: list[tuple[str, str]] = field(default_factory=list)  # (material type, name)


def _local(at: datetime | str | None, ctx: Context) -> str:
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            return ""
    return "" if at is None or at.tzinfo is None else f"{at.astimezone(ctx.zone):{LOCAL}}"


def offered(ctx: Context, case: Case, principal: Principal) -> FilingForm:
    """The trail the business system sent, else 受理 by the case's clerk and 办结 by this person now."""
    now = ctx.now().astimezone(ctx.zone)
    if case.trail:
        rows = [{"action": str(s.get("action", "")), "person": str(s.get("person", "")),
                 "at": _local(s.get("at"), ctx), "opinion": str(s.get("opinion") or "")} for s in case.trail]
    else:
        rows = [{"action": "受理", "person": case.clerk, "at": _local(case.accepted_at, ctx), "opinion": ""},
                {"action": "办结", "person": principal.name, "at": _local(now, ctx), "opinion": ""}]
    return FilingForm(rows, closed_at=f"{now:{LOCAL}}")


def _parse_local(value: str, ctx: Context) -> datetime | None:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=ctx.zone)
    except ValueError:
        return None


def read_form(form: FormData, ctx: Context) -> tuple[FilingForm, CloseIn | None]:
    """The form as typed, and the request it makes (None when a field is wrong: the form says which)."""
    def texts(name: str) -> list[str]:
        return [v.strip() for v in form.getlist(name) if isinstance(v, str)]

    def one(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    columns = [texts(n) for n in ("action", "person", "at", "opinion")]
    width = max((len(c) for c in columns), default=0)
    rows = [{k: (c[i] if i < len(c) else "") for k, c in zip(("action", "person", "at", "opinion"), columns,
                                                              strict=True)} for i in range(min(width, MAX_ROWS))]
    rows = [r for r in rows if any(r.values())]  # the blank rows offered and left empty
    typed = FilingForm(rows, one("outcome"), one("closed_at"), one("override_reason"))
    body: dict[str, Any] = {"outcome": typed.outcome, "trail": [], "override_reason": typed.override_reason or None}
    if typed.closed_at:
        body["closed_at"] = _parse_local(typed.closed_at, ctx) or typed.closed_at
    for r in rows:
        body["trail"].append({"action": r["action"], "person": r["person"],
                              "at": _parse_local(r["at"], ctx) or r["at"], "opinion": r["opinion"] or None})
    try:
        return typed, CloseIn.model_validate(body)
    except ValidationError as exc:
        for e in exc.errors():
            loc = [str(p) for p in e["loc"]]
            key = f"trail-{loc[1]}-{loc[2]}" if loc[0] == "trail" and len(loc) > 2 else loc[0]
            typed.problems.setdefault(key, _reason(e, loc))
        return typed, None


def _reason(error: Any, loc: list[str]) -> str:
    if str(error["type"]).startswith("datetime"):
        return "请选择日期和时间"
    if error["type"] == "too_short" and loc == ["trail"]:
        return "至少填写一个环节"
    return reason(error)


def refusal_of(ctx: Context, exc: AnyError) -> Refusal:
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    failed = [{**f, "hint": FIX_HINTS.get(str(f.get("code")), f"请按检测结果处理：{f.get('detail')}")}
              for f in detail.get("failed", []) if isinstance(f, dict)]
    missing = [(str(m), ctx.schedule.materials.get(str(m), str(m))) for m in detail.get("missing", [])]
    report = detail.get("check_report")
    return Refusal(exc.code, exc.message, failed, report if isinstance(report, int) else None, missing)


def _page(request: Request, ctx: Context, case: Case, principal: Principal, form: FilingForm, *,
          status: int = 200, refusal: Refusal | None = None, item: ArchiveItem | None = None) -> Response:
    """The whole page, or for htmx only the filing area (the form, or the result once filed)."""
    entries = checklist(ctx, case)
    values: dict[str, Any] = dict(
        case=case, form=form, refusal=refusal, item=item, actions=ACTIONS, outcomes=OUTCOMES, entries=entries,
        field_names=FIELD_NAMES, missing=[e for e in entries if e.required and not e.present],
        can_override=principal.can(Permission.FILING_OVERRIDE), schedule=ctx.schedule,
        full_pii=principal.can(Permission.PII_READ), facts=items.facts(ctx, item) if item else None)
    template = "partials/filing_area.html" if is_htmx(request) else "filing.html"
    return render(request, template, status=status, **values)


@router.get("/cases/{serial}/close")
def close_page(serial: str, request: Request, ctx: Context = Depends(context), db: Session = UnitOfWork,
               principal: Principal = Depends(require(Permission.CASE_WRITE, Permission.FILING_OVERRIDE))
               ) -> Response:
    case = get_case(db, principal, serial)
    return _page(request, ctx, case, principal, offered(ctx, case, principal), item=case.item)


async def form_data(request: Request) -> FormData:
    return await request.form()


@router.post("/cases/{serial}/close")
def close(serial: str, request: Request, form: FormData = Depends(form_data), ctx: Context = Depends(context),
          db: Session = UnitOfWork,
          principal: Principal = Depends(require(Permission.CASE_WRITE, Permission.FILING_OVERRIDE))) -> Response:
    case = get_case(db, principal, serial)  # 404 for another branch's case, before anything is read from the form
    typed, data = read_form(form, ctx)
    if data is None:
        shown = "；".join(f"{_field_label(k)}：{v}" for k, v in list(typed.problems.items())[:5])
        return _page(request, ctx, case, principal, typed, status=422,
                     refusal=Refusal("invalid_request", f"填写有误，未归档：{shown}"))
    try:
        file_case(ctx, db, principal, serial, data)
    except ERRORS as exc:
        with ctx.catalogue.reading() as r:
            return _page(request, ctx, get_case(r, principal, serial), principal, typed, status=status_of(exc),
                         refusal=refusal_of(ctx, exc))
    with ctx.catalogue.reading() as r:
        filed = get_case(r, principal, serial)
        return _page(request, ctx, filed, principal, typed, item=filed.item)


def _field_label(key: str) -> str:
    parts = key.split("-")
    if parts[0] == "trail" and len(parts) == 3:
        return f"第 {int(parts[1]) + 1} 步{FIELD_NAMES.get(parts[2], parts[2])}"
    return FIELD_NAMES.get(key, key)
