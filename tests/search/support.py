"""The corpus the search contract runs on, and taking a case out of a test catalogue as destruction will.

Opening and filing cases in a test catalogue: tests/factories.py (``add_case``, ``file_case_row``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select

from archive import indexing
from archive.catalogue.models import Case
from archive.context import Context
from search.base import SearchDocument

BJ = timezone(timedelta(hours=8))
ID_ZHANG_SAN = "110105196501150019"
ID_OUYANG = "11010519880808002X"
USCC_KEJI = "91110108MA01ABCD3Q"

# Each row: id, kind, category, business type, its name, applicant, id number, unit, uscc, branch,
#           accepted (Beijing time), closed (Beijing) or None, retention, expiry, amount, loan contract.
_ROWS = [
    (1, "item", "TQ", "TQ03", "离休、退休提取", "张三", ID_ZHANG_SAN, None, None, "BR01",
     datetime(2024, 12, 20, 10, 0, tzinfo=BJ), datetime(2024, 12, 30, 9, 0, tzinfo=BJ), "D30", date(2055, 1, 1),
     "52000.00", None),
    (2, "item", "TQ", "TQ01", "购买自住住房提取", "欧阳娜娜", ID_OUYANG, None, None, "BR02",
     datetime(2025, 1, 15, 9, 30, tzinfo=BJ), datetime(2025, 1, 20, 16, 0, tzinfo=BJ), "D30", date(2056, 1, 1),
     "150000.50", None),
    (3, "case", "DK", "DK01", "个人住房贷款申请与发放", "王伟强", "110105197203030031", None, None, "BR01",
     datetime(2025, 2, 1, 11, 0, tzinfo=BJ), None, None, None, "800000.00", "DK2025001"),
    (4, "item", "GJ", "GJ02", "单位缴存登记", None, None, "示例科技有限公司", USCC_KEJI, "BR01",
     datetime(2025, 2, 20, 14, 0, tzinfo=BJ), datetime(2025, 2, 21, 10, 0, tzinfo=BJ), "D30", date(2056, 1, 1),
     None, None),
    (5, "item", "TQ", "TQ07", "租房提取", "李四", "110105199002020046", None, None, "BR03",
     datetime(2025, 3, 5, 9, 0, tzinfo=BJ), datetime(2025, 3, 6, 9, 0, tzinfo=BJ), "D30", date(2056, 1, 1),
     "1500.00", None),
    (6, "case", "TQ", "TQ09", "重大疾病提取", "张三丰", "110105195504040057", None, None, "BR02",
     datetime(2025, 3, 31, 23, 30, tzinfo=BJ), None, None, None, None, None),
    (7, "item", "DK", "DK03", "贷款结清与抵押注销", "赵敏", "110105198109090068", None, None, "BR01",
     datetime(2025, 4, 1, 0, 10, tzinfo=BJ), datetime(2025, 4, 2, 15, 0, tzinfo=BJ), "D30", None, None, "DK2019777"),
    (8, "item", "ZJ", "ZJ02", "银行结算与对账", None, None, "住房公积金管理中心", None, "BR01",
     datetime(2025, 5, 10, 10, 0, tzinfo=BJ), datetime(2025, 5, 10, 17, 0, tzinfo=BJ), "D10", date(2036, 1, 1),
     "3000000.00", None),
    (9, "item", "GJ", "GJ14", "异地转移", "钱多多", "110105199912120074", None, None, "BR02",
     datetime(2025, 6, 1, 9, 0, tzinfo=BJ), datetime(2025, 6, 3, 9, 0, tzinfo=BJ), "D30", date(2056, 1, 1),
     None, None),
    (10, "case", "GJ", "GJ05", "个人账户设立", "孙悟空", "110105200001010085", None, None, "BR03",
     datetime(2025, 6, 15, 9, 0, tzinfo=BJ), None, None, None, None, None),
    (11, "item", "TQ", "TQ05", "出境定居提取", "JOHN SMITH", "110105197707070092", None, None, "BR01",
     datetime(2025, 7, 1, 9, 0, tzinfo=BJ), datetime(2025, 7, 2, 9, 0, tzinfo=BJ), "D30", date(2056, 1, 1),
     "88000.00", None),
    (12, "item", "DK", "DK04", "逾期催收与诉讼", "周杰", "110105196806060107", None, None, "BR02",
     datetime(2025, 8, 8, 9, 0, tzinfo=BJ), datetime(2025, 8, 9, 9, 0, tzinfo=BJ), "Y", None, "230000.00",
     "DK2018123"),
    (13, "item", "TQ", "TQ06", "偿还购房贷款本息提取", "张三", ID_ZHANG_SAN, None, None, "BR01",
     datetime(2025, 9, 1, 9, 0, tzinfo=BJ), datetime(2025, 9, 2, 9, 0, tzinfo=BJ), "D30", date(2056, 1, 1),
     "20000.00", None),
]
CATEGORY_NAMES = {"GJ": "归集", "TQ": "提取", "DK": "贷款", "ZJ": "资金"}


def serial(n: int) -> str:
    return f"YW{n:06d}"


def archival_code(n: int, category: str, retention: str, year: int) -> str:
    return f"J001-YW·{year}-{retention}-{category}-{n:06d}"


def corpus() -> list[SearchDocument]:
    """Thirteen cases and items: two-character and one-character words, a Latin name, unit names,
    shared ID numbers, a date on each side of a Beijing midnight, open and filed, four branches."""
    docs = []
    for (n, kind, cat, bt, bt_name, name, idno, unit, uscc, branch, accepted, closed, retention, expiry,
         amount, loan) in _ROWS:
        year = (closed or accepted).year if kind == "item" else accepted.year
        docs.append(SearchDocument(
            id=n, serial=serial(n), kind=kind, category=cat, business_type=bt, business_type_name=bt_name,
            status="filed" if kind == "item" else "open", branch=branch, accepted_at=accepted.astimezone(UTC),
            year=year, archival_code=archival_code(n, cat, retention, year) if kind == "item" else None,
            retention_code=retention, applicant_name=name, applicant_id_number=idno, unit_name=unit,
            unit_uscc=uscc, loan_contract_no=loan, closed_at=closed.astimezone(UTC) if closed else None,
            expiry_date=expiry, amount=Decimal(amount) if amount else None,
            text=" ".join(w for w in (name, unit, bt_name, CATEGORY_NAMES[cat]) if w),
        ))
    return docs


def serials(*numbers: int) -> list[str]:
    return [serial(n) for n in numbers]


# --- catalogue helpers -------------------------------------------------------------------------


def remove_case(ctx: Context, serial_: str) -> None:
    """What destruction will do: the case leaves the catalogue, and the index is told."""
    with ctx.catalogue.session() as s:
        case = s.scalar(select(Case).where(Case.serial == serial_))
        assert case is not None
        if case.item is not None:
            s.delete(case.item)
        for d in case.documents:
            s.delete(d)
        s.delete(case)
        indexing.enqueue(s, serial_)
