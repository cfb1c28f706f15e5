"""Demo data for a newcomer to click through, made by the real pipeline: users of every role, a
business-system client, cases across 归集/提取/贷款/资金 with generated scans, most of them filed
as signed items, and one batch-scanned stack split at its cover sheets.

Names, ID numbers and serials are synthetic (valid check digits, no real person).
"""

from __future__ import annotations

import io
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import img2pdf
import pypdfium2 as pdfium
from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import identity
from archive.audit import Actor
from archive.capture import scans
from archive.capture.cases import Applicant, CaseIn, Unit, open_case
from archive.capture.cover_sheet import ChecklistLine, render
from archive.capture.documents import Received, attach
from archive.catalogue.models import ArchiveItem, Case, User
from archive.context import Context
from archive.filing import CloseIn, TrailStep, close_case
from archive.identifiers import id_number_check_char, uscc_check_char
from archive.permissions import ROLE_PERMISSIONS, Principal, permissions_of_roles
from archive.retention import lending
from archive.retention.lending import LoanIn, RequestIn
from signing.fixity import digest_bytes

DEMO_PASSWORD = "demo-pass-1"
USERS = [  # username, name, roles, branch
    ("clerk01", "柜员甲", ["clerk"], "BR01"),
    ("clerk02", "柜员乙", ["clerk"], "BR02"),
    ("archivist", "档案员丙", ["archivist"], None),
    ("archhead", "档案科长庚", ["archive_head"], None),  # second pair of eyes for 销毁 and 借阅
    ("auditor", "审计员丁", ["auditor"], None),
    ("admin", "系统管理员戊", ["admin"], None),
    ("secofficer", "安全保密员己", ["security_officer"], None),
]
CLIENT_SCOPES = ["data.read", "images.read", "files.read", "cases.write"]
SURNAMES, GIVEN = "王李张刘陈杨赵黄周吴", "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀"
# business type, filed?  — a spread over the four business lines
CASES = [("TQ01", True), ("TQ03", True), ("TQ07", False), ("GJ02", True), ("GJ09", True), ("GJ13", False),
         ("DK01", True), ("DK03", True), ("ZJ02", True), ("ZJ03", False)]
# 2014 bank reconciliations (定期10年 from the fiscal year end): expired by now, so 鉴定 and 销毁 can be tried
EXPIRED = [("ZJ02", datetime(2014, 5, 6, 2, 0, tzinfo=UTC)), ("ZJ02", datetime(2014, 11, 18, 6, 30, tzinfo=UTC))]
STACKED = {"GJ13", "ZJ03"}  # open cases whose pages come from one batch-scanned stack
A4 = (1654, 2339)  # 200 dpi


def _id_number(rng: random.Random) -> str:
    born = date(1960, 1, 1) + timedelta(days=rng.randrange(40 * 365))
    first = f"110105{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first + id_number_check_char(first)


def _uscc(rng: random.Random) -> str:
    first = "9111010" + "".join(rng.choice("0123456789") for _ in range(10))
    return first + uscc_check_char(first)


def _scan(title: str, rng: random.Random) -> Image.Image:
    """A plausible scanned form page: a header bar, ruled lines, a stamp."""
    img = Image.new("L", A4, 250)
    d = ImageDraw.Draw(img)
    d.rectangle((150, 120, A4[0] - 150, 220), fill=40)
    d.text((170, 150), title.encode("ascii", "ignore").decode() or "FORM", fill=255)
    for y in range(320, A4[1] - 300, 70):
        d.line((150, y, A4[0] - 150 - rng.randrange(400), y), fill=90, width=3)
    d.ellipse((A4[0] - 520, A4[1] - 620, A4[0] - 200, A4[1] - 300), outline=60, width=8)
    return img


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70, dpi=(200, 200))
    return buf.getvalue()


def _received(name: str, data: bytes) -> Received:
    d = digest_bytes(data)
    return Received(name, data, d.sha256, d.sm3)


def load_demo(ctx: Context, seed: int = 495) -> str:
    """Idempotent: a second run changes nothing."""
    rng, actor = random.Random(seed), Actor.system("demo")
    system = Principal("user", 0, "demo", frozenset().union(*ROLE_PERMISSIONS.values()))
    with ctx.catalogue.session() as s:
        if s.scalar(select(User).where(User.username == "clerk01")):
            return ("演示数据已存在，未重复加载。演示接入系统 demo-core-system 的密钥只在首次加载时显示；如已遗失，"
                    f"另发一个：archive client add demo-core-system-2 {' '.join('--scope ' + s for s in CLIENT_SCOPES)}"
                    "（不再使用的可用 archive client revoke demo-core-system 吊销）")
        for username, name, roles, branch in USERS:
            identity.add_user(s, actor, username, DEMO_PASSWORD, name, roles, branch)
        _, key = identity.add_client(s, actor, "demo-core-system", CLIENT_SCOPES)
    stacked: list[tuple[str, list[str]]] = []
    recent = [(code, filed, datetime(2026, 3, 2, 1, 30, tzinfo=UTC) + timedelta(days=9 * i, minutes=41 * i))
              for i, (code, filed) in enumerate(CASES)]
    for i, (code, filed, accepted) in enumerate(recent + [(code, True, at) for code, at in EXPIRED]):
        bt = ctx.schedule.business_type(code)
        serial = f"YW{accepted:%Y%m%d}{i + 1:06d}"
        unit = bt.category in {"GJ", "ZJ"}
        data = CaseIn(
            serial=serial, business_type=code, branch="BR01" if i % 2 == 0 else "BR02",
            clerk="clerk01" if i % 2 == 0 else "clerk02", accepted_at=accepted,
            applicant=Applicant(name=rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
                                id_number=_id_number(rng), mobile=f"13{rng.randrange(10**9):09d}"),
            unit=Unit(name=f"示例单位{i + 1}有限公司", uscc=_uscc(rng)) if unit else None,
            loan_contract_no=f"DK{accepted:%Y}{i + 1:05d}" if bt.category == "DK" else None,
        )
        with ctx.catalogue.session() as s:
            case, _ = open_case(ctx, s, system, data)
            if code in STACKED:
                stacked.append((serial, list(bt.required)))
                continue
            for n, material in enumerate(bt.required, start=1):
                attach(ctx, s, system, case, _received(f"{material}-{n}.jpg", _jpeg(_scan(material, rng))), material)
        if filed:
            closed = accepted + timedelta(hours=6)
            trail = [TrailStep(action="受理", person=case.clerk, at=accepted),
                     TrailStep(action="审批", person="chief01", at=closed - timedelta(hours=1), opinion="同意"),
                     TrailStep(action="办结", person=case.clerk, at=closed)]
            close_case(ctx, system, serial, CloseIn(outcome="approved", closed_at=closed, trail=trail))
    lending_note = _lending(ctx)
    # the stack is scanned at BR02, where its cases are: its batch belongs there (clerk02 sees it in 扫描室)
    batch_note = _stack(ctx, replace(system, branches=frozenset({"BR02"})), stacked, rng) if stacked else ""
    filed_count = sum(1 for _, f in CASES if f) + len(EXPIRED)
    users = "、".join(u[0] for u in USERS)
    return (f"已加载演示数据：{len(USERS)} 个用户（密码均为 {DEMO_PASSWORD}：{users}），"
            f"{len(CASES) + len(EXPIRED)} 笔业务（{filed_count} 笔已归档，其中 {len(EXPIRED)} 笔已到保管期限、可鉴定）"
            f"{batch_note}{lending_note}；演示接入系统 demo-core-system 的密钥：{key}")


def _person(session: Session, username: str) -> Principal:
    user = session.scalar(select(User).where(User.username == username))
    assert user is not None
    roles = tuple(user.role_codes)
    return Principal("user", user.id, username, permissions_of_roles(roles), roles,
                     frozenset({user.branch}) if user.branch else None)


def _lending(ctx: Context) -> str:
    """For the console's 利用 pages: clerk01 asks to consult a filed item (waiting for someone else's approval), and
    a paper file went out three weeks ago and is overdue (催还)."""
    with ctx.catalogue.session() as s:
        codes = list(s.scalars(select(ArchiveItem.archival_code).join(Case).where(Case.branch == "BR01")
                               .order_by(ArchiveItem.id).limit(2)))
        if len(codes) < 2:
            return ""
        clerk, archivist = (_person(s, n) for n in ("clerk01", "archivist"))
        max_days = ctx.settings.lending_max_days
        lending.create_request(s, clerk, RequestIn(archival_codes=[codes[0]], purpose="review", mode="online", days=7,
                                                   department="归集科", purpose_text="核对缴存基数"), max_days)
        today = datetime.now(ctx.zone).date()
        out = LoanIn(borrower="赵审计", borrower_unit="审计科", archival_codes=[codes[1]],
                     due_date=today - timedelta(days=6))
        loan = lending.lend_out(s, archivist, out, today - timedelta(days=21), max_days)
        loan.lent_at -= timedelta(days=21)
    return "，1 份待审批的利用申请和 1 份逾期未还的实体借阅"


def _stack(ctx: Context, system: Principal, cases: list[tuple[str, list[str]]], rng: random.Random) -> str:
    """One scanner stack: a stray page, then each case's cover sheet followed by its pages."""
    pages = [_jpeg(_scan("stray", rng))]
    for serial, materials in cases:
        lines = [ChecklistLine(m, True, False) for m in materials]
        doc = pdfium.PdfDocument(render(serial, "演示", None, "BR01", lines, ctx.settings.fonds_name,
                                        ctx.settings.cjk_font))
        pages.append(_jpeg(doc[0].render(scale=200 / 72, grayscale=True).to_pil()))
        doc.close()
        pages += [_jpeg(_scan(m, rng)) for m in materials]
    with ctx.catalogue.session() as s:
        batch = scans.receive(ctx, s, system, _received("scanner-stack.pdf", img2pdf.convert(pages)))
        batch_id = batch.id
    scans.process(ctx, batch_id)
    return f"，另有 1 个批量扫描批次（{len(pages)} 页，含 1 页待分配）"
