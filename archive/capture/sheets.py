"""The printed sheets of a case: its cover sheet (扫描封面) and material separator sheets (材料分隔页).

What goes on them (the checklist, the business type's name, the applicant masked) is decided here once, for the
API and the web UI alike; archive.capture.cover_sheet only draws.
"""

from __future__ import annotations

from collections.abc import Sequence

from archive.capture import cover_sheet, documents
from archive.capture.cases import ensure_open
from archive.catalogue.models import Case
from archive.context import Context
from archive.errors import InvalidInput
from archive.identifiers import mask_name


def _party(case: Case) -> str | None:
    """Sheets lie on the counter and in the scanner: the applicant's name masked, else the unit."""
    return mask_name(case.applicant_name) or case.unit_name


def cover(ctx: Context, case: Case) -> bytes:
    """The cover sheet PDF: the serial as barcodes and the checklist as it stands now."""
    lines = [cover_sheet.ChecklistLine(e.name, e.required, e.present) for e in documents.checklist(ctx, case)]
    return cover_sheet.render(case.serial, ctx.schedule.business_type(case.business_type).name, _party(case),
                              case.branch, lines, ctx.settings.fonds_name, ctx.settings.cjk_font)


def separators(ctx: Context, case: Case, material_types: Sequence[str] | None = None) -> bytes:
    """Separator sheets of an open case: the named materials (each must belong to its business type), by default
    every required one, in checklist order."""
    ensure_open(case)
    entries = documents.checklist(ctx, case)
    for m in material_types or []:
        documents.check_material(ctx, case, m)
    wanted = set(material_types) if material_types else {e.material_type for e in entries if e.required}
    sheets = [cover_sheet.SeparatorLine(e.material_type, e.name, e.required) for e in entries
              if e.material_type in wanted]
    if not sheets:
        raise InvalidInput(f"{case.business_type} 业务没有必备材料；请用 material_type 参数指定要打印的材料",
                           code="no_separator_sheets", detail={"field": "material_type"})
    return cover_sheet.render_separators(case.serial, ctx.schedule.business_type(case.business_type).name,
                                         _party(case), sheets, ctx.settings.fonds_name, ctx.settings.cjk_font)
