"""The 移交登记表 (transfer register): register.json's shape, and the register as PDF, alone (export) or with the
receiver's check results as the 移交与接收登记表 (receipt).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from archive.catalogue.models import TransferReceipt
from archive.checks.base import DIMENSION_NAMES, OUTCOME_NAMES, Dimension, Outcome
from archive.context import Context
from archive.localtime import local_time
from archive.pdfs import A4, a4_canvas, cjk_font, mm

FORMAT = "DA/T 48-2009 EEP"
PACKAGE_NO_LENGTH = 64  # TransferPackage/TransferReceipt.package_no


def register_problems(register: dict[str, Any]) -> list[str]:
    """What is of the wrong type in a 移交登记表 (register.json); missing fields are YJ-2-10's finding."""
    def count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    def text(v: Any) -> bool:
        return isinstance(v, str)

    rules: dict[str, tuple[Callable[[Any], bool], str]] = {
        **{k: (text, "应为文字") for k in ("title", "sender", "sender_fonds_code", "receiver", "transfer_method",
                                          "format", "created_at", "created_by")},
        "package_no": (lambda v: text(v) and 0 < len(v) <= PACKAGE_NO_LENGTH,
                       f"应为不超过 {PACKAGE_NO_LENGTH} 个字符的文字"),
        **{k: (count, "应为非负整数") for k in ("item_count", "payload_bytes", "content_bytes")},
        "years": (lambda v: v is None or (isinstance(v, list) and len(v) == 2 and all(count(y) for y in v)),
                  "应为 [起始年度, 终止年度]"),
        **{k: (lambda v: isinstance(v, dict) and all(count(n) for n in v.values()), "应为 {代码: 件数}")
           for k in ("retention_counts", "category_counts")},
        "digests": (lambda v: isinstance(v, dict) and all(text(d) for d in v.values()), "应为 {算法: 摘要}"),
    }
    return [f"{k} {why}" for k, (ok, why) in rules.items() if k in register and not ok(register[k])]


# --- the register as PDF ---


def receipt_pdf(ctx: Context, row: TransferReceipt) -> bytes:
    """移交与接收登记表: the sender's register as received, the receipt, and every YJ result."""
    register = row.register or {"package_no": row.package_no or "", "sender": row.sender or "",
                                "item_count": row.item_count, "payload_bytes": row.payload_bytes}
    receipt = {"received_at": row.received_at.astimezone(ctx.zone).isoformat(timespec="seconds"),
               "received_by": row.received_by, "sha256": row.sha256,
               "status_name": "通过检测，予以接收" if row.status == "accepted" else "未通过检测，退回移交单位"}
    return register_pdf(ctx, register, row.check_results, receipt)


def register_pdf(ctx: Context, register: dict[str, Any], results: list[dict[str, Any]] | None = None,
                 receipt: dict[str, Any] | None = None) -> bytes:
    """移交登记表 (export) or 移交与接收登记表 (with the receiver's check results) as a one-page-per-part PDF."""
    font = cjk_font(ctx.settings.cjk_font)
    buf = io.BytesIO()
    width, height = A4
    title = "电子档案移交与接收登记表" if receipt is not None else "电子档案移交登记表"
    c = a4_canvas(buf, title=f"{title} {register.get('package_no', '')}", author=str(register.get("sender", "")),
                  invariant=True)
    y = height - 25 * mm

    def line(label: str, value: object, size: float = 10.5) -> None:
        nonlocal y
        if y < 20 * mm:
            c.showPage()
            y = height - 20 * mm
        c.setFont(font, size)
        c.drawString(20 * mm, y, label)
        c.drawString(62 * mm, y, str(value)[:90])
        y -= 7 * mm

    c.setFont(font, 16)
    c.drawCentredString(width / 2, y, title)
    y -= 12 * mm
    years = register.get("years")  # a stored register may predate validation: fall back on odd shapes
    years = years if isinstance(years, list) and len(years) == 2 else ["", ""]
    retention = register.get("retention_counts")
    retention = retention if isinstance(retention, dict) else {}
    labels = {"Y": "永久", "D30": "定期30年", "D10": "定期10年"}
    digests = register.get("digests")
    digests = digests if isinstance(digests, dict) else {}
    for label, value in [
        ("移交批次号", register.get("package_no", "")), ("移交单位", register.get("sender", "")),
        ("接收单位", register.get("receiver", "")), ("移交方式", register.get("transfer_method", "在线")),
        ("封装格式", register.get("format", FORMAT)), ("件数", register.get("item_count", "")),
        ("字节数", register.get("payload_bytes", "")), ("内容字节数", register.get("content_bytes", "")),
        ("年度范围", f"{years[0]}—{years[1]}"),
        ("保管期限", "，".join(f"{labels.get(k, k)} {v} 件" for k, v in retention.items())),
        ("目录文件 SHA-256", str(digests.get("sha256", ""))[:64]), ("目录文件 SM3", str(digests.get("sm3", ""))[:64]),
        ("制表时间", local_time(register.get("created_at"), ctx.zone)), ("制表人", register.get("created_by", "")),
    ]:
        line(label, value)
    if receipt is not None:
        y -= 4 * mm
        for label, value in [("接收时间", local_time(receipt.get("received_at"), ctx.zone)),
                             ("接收人", receipt.get("received_by", "")),
                             ("接收结论", receipt.get("status_name", "")),
                             ("接收包 SHA-256", receipt.get("sha256", ""))]:
            line(label, value)
    if results is not None:
        y -= 4 * mm
        for label, value in _summary(results):  # the 登记表's rows: 真实性…安全性, 病毒检测, 载体外观检测
            line(label, value)
        y -= 4 * mm
        line("检测项", "结果与说明", 11)
        for r in results:
            dim = DIMENSION_NAMES.get(Dimension(r["dimension"]), r["dimension"])
            outcome = OUTCOME_NAMES.get(Outcome(r["outcome"]), r["outcome"])
            line(f"{r['code']} {dim}", f"{r['name']}：{outcome}" + (f"（{r['target']}）" if r.get("target") else ""),
                 9)
            if r["outcome"] in ("failed", "error", "manual") and r.get("detail"):
                line("", str(r["detail"])[:80], 8)
    y -= 10 * mm
    line("移交人（签字）：", "                    接收人（签字）：")
    line("日期：", "                    日期：")
    c.showPage()
    c.save()
    return buf.getvalue()


def _summary(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    rows = []
    for dim in Dimension:
        bad = sorted({r["code"] for r in results
                      if r["dimension"] == dim.value and r["outcome"] in ("failed", "error")})
        rows.append((f"{DIMENSION_NAMES[dim]}检测", f"不通过（{'、'.join(bad)}）" if bad else "通过"))
    for label, code in (("病毒检测", "YJ-4-2"), ("载体外观检测", "YJ-4-4")):
        outcomes = {r["outcome"] for r in results if r["code"] == code}
        worst = next((o for o in ("error", "failed", "manual", "passed", "not_applicable") if o in outcomes), None)
        rows.append((label, OUTCOME_NAMES[Outcome(worst)] if worst else "未检测"))
    return rows
