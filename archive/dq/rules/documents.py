"""Rules on documents (材料): required materials, page counts, scan resolution (DA/T 31), duplicates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from archive.catalogue.models import ArchiveItem, Case, CheckReport, CheckResult, Document
from archive.context import Context
from archive.dq.registry import Failure, Scope, rule, table_of, with_source
from archive.dq.rules.cases import _rows

IMAGES = ("image/jpeg", "image/png", "image/tiff")


def _doc(row: Any, message: str, **values: Any) -> Failure:
    return Failure("document", str(row.id), row.serial, message, row.branch,
                   {"sequence": row.sequence, "material_type": row.material_type, **values})


def _active_docs(scope: Scope, *columns: Any) -> Any:
    return scope.cases(select(Document.id, Document.sequence, Document.material_type, Case.serial, Case.branch,
                              *columns).join(Case, Document.case_id == Case.id).where(Document.is_active))


@rule("DQ-DO-001", "必备材料齐全", dimension="completeness", object="case", severity="error", owner="business",
      hint="按分类方案补扫缺少的必备材料并补充归档，或由档案部门说明缺件原因")
def required_materials(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    req = table_of("required", ((code, m) for code, bt in ctx.schedule.types.items() for m in bt.required))
    has = exists().where(Document.case_id == Case.id, Document.material_type == req.c.b, Document.is_active)
    q = scope.cases(select(Case.serial, Case.branch, Case.business_type, req.c.b.label("material"))
                    .join(req, req.c.a == Case.business_type).where(Case.status == "filed", ~has))
    for row in _rows(session, q):
        bt = ctx.schedule.types[row.business_type]
        name = ctx.schedule.materials.get(row.material, row.material)
        yield Failure("case", row.serial, row.serial, f"已归档的{bt.name}业务缺少必备材料“{name}”", row.branch,
                      {"material_type": row.material})


@rule("DQ-DO-002", "材料类型属于业务类型", dimension="conformity", object="document", severity="error",
      owner="business", hint="在业务页面把材料改为正确的材料类型")
def material_allowed(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    allowed = table_of("allowed", ((code, m) for code, bt in ctx.schedule.types.items()
                                   for m in bt.required + bt.optional))
    ok = exists().where(allowed.c.a == Case.business_type, allowed.c.b == Document.material_type)
    q = _active_docs(scope, Case.business_type).where(Case.business_type.in_(tuple(ctx.schedule.types)), ~ok)
    for row in _rows(session, q):
        yield _doc(row, f"材料类型 {row.material_type} 不属于{ctx.schedule.types[row.business_type].name}业务")


@rule("DQ-DO-003", "扫描分辨率不低于要求（DA/T 31）", dimension="conformity", object="document", severity="warn",
      owner="business", where="both", kind="python",
      hint="按不低于200dpi重新扫描该材料并替换")
def scan_resolution(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    floor = ctx.settings.min_dpi
    for row in _rows(session, _active_docs(scope, Document.detail).where(Document.media_type.in_(IMAGES))):
        low = _low_pages((row.detail or {}).get("dpi") or [], floor)
        if low:
            yield _doc(row, f"第 {'、'.join(map(str, low[:10]))} 页扫描分辨率低于 {floor}dpi", pages=low[:50])


def _low_pages(dpi: list[Any], floor: int) -> list[int]:
    return [i for i, d in enumerate(dpi, 1) if isinstance(d, int | float) and 0 < d < floor]


def _resolution_source(ctx: Context, session: Session, values: Mapping[str, Any]) -> str | None:
    low = _low_pages(values.get("dpi") or [], ctx.settings.min_dpi)
    return f"第 {'、'.join(map(str, low[:10]))} 页扫描分辨率低于 {ctx.settings.min_dpi}dpi" if low else None


with_source("DQ-DO-003", _resolution_source)


@rule("DQ-DO-004", "页数有效", dimension="accuracy", object="document", severity="error", owner="it",
      where="both", hint="材料页数登记有误：重新上传该材料")
def page_count_positive(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    for row in _rows(session, _active_docs(scope, Document.page_count).where(Document.page_count < 1)):
        yield _doc(row, "材料登记的页数小于1", page_count=row.page_count)


with_source("DQ-DO-004", lambda ctx, s, v: "材料登记的页数小于1" if v.get("page_count", 1) < 1 else None)


@rule("DQ-DO-005", "图像材料的页数与逐页分辨率记录一致", dimension="consistency", object="document",
      severity="warn", owner="it", kind="python",
      hint="材料的检测记录不完整：重新上传该材料")
def page_count_vs_inspection(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    q = _active_docs(scope, Document.page_count, Document.detail).where(Document.media_type.in_(IMAGES))
    for row in _rows(session, q):
        dpi = (row.detail or {}).get("dpi")
        if isinstance(dpi, list) and dpi and len(dpi) != row.page_count:
            yield _doc(row, f"登记页数 {row.page_count} 与检测记录的页数 {len(dpi)} 不一致", page_count=row.page_count)


@rule("DQ-DO-006", "归档件页数与原件页数一致", dimension="consistency", object="item", severity="error",
      owner="archive", hint="归档 PDF 页数与原件登记页数不符：核对原件，必要时经审批重新归档")
def rendition_pages(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    q = scope.cases(select(ArchiveItem.archival_code, Case.serial, Case.branch, CheckResult.data)
                    .join(Case, ArchiveItem.case_id == Case.id)
                    .join(CheckReport, CheckReport.item_id == ArchiveItem.id)
                    .join(CheckResult, CheckResult.report_id == CheckReport.id)
                    .where(CheckResult.code == "GD-1-10", CheckResult.outcome == "failed"))
    for row in _rows(session, q):
        data = row.data or {}
        yield Failure("item", row.archival_code, row.serial,
                      f"归档 PDF 共 {data.get('pages')} 页，原件登记页数合计 {data.get('expected')} 页", row.branch,
                      {"pages": data.get("pages"), "expected": data.get("expected")})


@rule("DQ-DO-007", "同一材料未重复归入不同业务", dimension="consistency", object="document", severity="warn",
      owner="business",
      hint="同一文件出现在多笔业务中：核对是否误传，误传的在归档前撤下；确属共用材料的说明原因后豁免")
def duplicates_across_cases(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    dup = (select(Document.sha256).where(Document.is_active).group_by(Document.sha256)
           .having(func.count(func.distinct(Document.case_id)) > 1))
    other = aliased(Document)
    q = _active_docs(scope, Document.sha256).where(Document.sha256.in_(dup.scalar_subquery()))
    for row in _rows(session, q):
        cases = session.scalars(select(Case.serial).join(other, other.case_id == Case.id).where(
            and_(other.sha256 == row.sha256, other.is_active, Case.serial != row.serial)).limit(5)).all()
        yield _doc(row, f"相同文件也在业务 {'、'.join(cases)} 中", sha256=row.sha256)


@rule("DQ-DO-008", "材料文件非空", dimension="completeness", object="document", severity="error", owner="it",
      hint="材料文件为空：重新上传该材料")
def file_not_empty(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    for row in _rows(session, _active_docs(scope).where(Document.size <= 0)):
        yield _doc(row, "材料文件大小为0")


