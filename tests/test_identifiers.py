"""公民身份号码, 统一社会信用代码 and mobile numbers: validation and masking."""

from __future__ import annotations

import pytest

from archive.errors import InvalidInput
from archive.identifiers import (
    id_number_check_char,
    mask_bank_card,
    mask_id_number,
    mask_mobile,
    mask_name,
    uscc_check_char,
    validate_id_number,
    validate_mobile,
    validate_uscc,
)

VALID_ID = "11010519491231002X"  # GB 11643 example
VALID_USCC = "91350100M000100Y43"


def test_id_number_with_correct_check_character_is_accepted_and_normalised() -> None:
    """Given a valid number typed with a lower-case x, when validated, then it comes back upper-cased."""
    assert validate_id_number(VALID_ID.lower()) == VALID_ID
    assert id_number_check_char("11010519491231002") == "X"


@pytest.mark.parametrize(("value", "reason"), [
    ("110105194912310021", "校验位"),
    ("1101051949123100", "18位"),
    ("11010519491331002X", "出生日期"),
    ("11010521491231002X", "出生日期"),
    ("11010519491231002Y", "18位"),
])
def test_invalid_id_number_is_refused_with_reason_and_field(value: str, reason: str) -> None:
    """Given a wrong 证件号码, when validated, then the error names the field and says what is wrong."""
    with pytest.raises(InvalidInput) as e:
        validate_id_number(value, "applicant.id_number")
    assert reason in e.value.message
    assert e.value.detail == {"field": "applicant.id_number"}
    assert value not in str(e.value.to_dict())  # personal data stays out of error payloads (and logs)


def test_uscc_check_character() -> None:
    """Given a published 统一社会信用代码, then its MOD 31 check character is recomputed exactly."""
    assert validate_uscc(VALID_USCC) == VALID_USCC
    assert uscc_check_char(VALID_USCC[:17]) == VALID_USCC[17]


@pytest.mark.parametrize("value", ["91350100M000100Y44", "91350100M000100Y4", "91350100M000100YI3"])
def test_invalid_uscc_is_refused(value: str) -> None:
    """Given a malformed 统一社会信用代码, when it is validated, then InvalidInput invalid_uscc."""
    with pytest.raises(InvalidInput) as e:
        validate_uscc(value)
    assert e.value.code == "invalid_uscc"


def test_mobile_numbers() -> None:
    """Given a mobile number with +86 and dashes, when it is validated, then its eleven digits; one starting 12, one
    digit short or not digits at all is refused."""
    assert validate_mobile("+86 138-0013-8000") == "13800138000"
    for bad in ["12800138000", "1380013800", "abc"]:
        with pytest.raises(InvalidInput):
            validate_mobile(bad)


def test_masking_keeps_only_what_a_list_may_show() -> None:
    """Given a 证件号码, mobile number, bank card and names, when they are masked, then only the parts a list may
    show are kept, and None stays None."""
    assert mask_id_number("110105199001011234") == "110105********1234"
    assert mask_mobile("13800138000") == "138****8000"
    assert mask_bank_card("6222021234567890123") == "6222***********0123"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧**娜"
    assert mask_id_number(None) is None
