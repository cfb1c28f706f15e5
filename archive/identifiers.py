"""Validation and display masking of personal and unit identifiers.

- 公民身份号码 (GB 11643-1999): 17 digits + ISO 7064 MOD 11-2 check character.
- 统一社会信用代码 (GB 32100-2015): 18 characters + MOD 31 check character.
- Mobile numbers (中国大陆手机号): 11 digits starting 1[3-9].
"""

from __future__ import annotations

import re
from datetime import date

from archive.errors import InvalidInput

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_MOBILE = re.compile(r"1[3-9]\d{9}")


def id_number_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def validate_id_number(value: str, field: str = "id_number") -> str:
    """Return the normalised 18-character 公民身份号码 or raise InvalidInput naming ``field``."""
    v = value.strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", v):
        raise _bad(field, value, "证件号码应为18位，前17位为数字，末位为数字或X")
    try:
        born = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise _bad(field, value, "证件号码中的出生日期不存在") from None
    if born < date(1900, 1, 1) or born > date.today():
        raise _bad(field, value, "证件号码中的出生日期不在合理范围内")
    if id_number_check_char(v[:17]) != v[17]:
        raise _bad(field, value, "证件号码校验位不正确，请核对号码是否录入有误")
    return v


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def validate_uscc(value: str, field: str = "uscc") -> str:
    """Return the normalised 统一社会信用代码 or raise InvalidInput naming ``field``."""
    v = value.strip().upper()
    if len(v) != 18 or any(c not in _USCC_CHARS for c in v):
        raise _bad(field, value, "统一社会信用代码应为18位，由数字和除I、O、Z、S、V以外的大写字母组成")
    if uscc_check_char(v[:17]) != v[17]:
        raise _bad(field, value, "统一社会信用代码校验位不正确，请核对是否录入有误")
    return v


def validate_mobile(value: str, field: str = "mobile") -> str:
    v = value.strip().removeprefix("+86").replace("-", "").replace(" ", "")
    if not _MOBILE.fullmatch(v):
        raise _bad(field, value, "手机号码应为以1开头的11位数字")
    return v


def mask_id_number(value: str | None) -> str | None:
    """``110105199001011234`` → ``110105********1234``: region kept, birth date hidden."""
    if not value:
        return value
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * len(value)


def mask_mobile(value: str | None) -> str | None:
    if not value:
        return value
    return value[:3] + "****" + value[-4:] if len(value) >= 11 else "*" * len(value)


def mask_bank_card(value: str | None) -> str | None:
    if not value:
        return value
    return value[:4] + "*" * (len(value) - 8) + value[-4:] if len(value) > 8 else "*" * len(value)


def mask_name(value: str | None) -> str | None:
    """``张三`` → ``张*``; ``欧阳娜娜`` → ``欧**娜``."""
    if not value or len(value) < 2:
        return value
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]


def _bad(field: str, value: str, reason: str) -> InvalidInput:
    return InvalidInput(reason, code=f"invalid_{field}", detail={"field": field})
