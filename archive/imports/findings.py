"""A finding (问题) of the scan or the dry run: a stable code, a severity and a message a clerk can act on."""

from __future__ import annotations

from typing import Literal, TypedDict

Severity = Literal["error", "warning"]

# code → (severity, what it means): errors keep the row out of the import until fixed or excluded.
CODES: dict[str, tuple[Severity, str]] = {
    "catalogue_unreadable": ("error", "目录文件无法读取或格式错误"),
    "catalogue_encoding": ("error", "目录文件编码与映射配置不符"),
    "column_missing": ("error", "映射配置中的列在目录中不存在"),
    "column_unknown": ("warning", "目录中有无法识别的列（未导入）"),
    "code_missing": ("error", "目录行没有档号"),
    "code_duplicate": ("error", "档号重复"),
    "code_invalid": ("error", "档号不符合档号规则"),
    "path_outside_delivery": ("error", "路径指向交付目录之外"),
    "link_in_delivery": ("error", "交付目录中有符号链接（未读取）"),
    "folder_missing": ("error", "目录行找不到对应的影像文件夹"),
    "folder_without_row": ("error", "影像文件夹在目录中没有对应的行"),
    "folder_empty": ("error", "影像文件夹中没有影像文件"),
    "page_missing": ("error", "页号不连续，缺页"),
    "page_count_mismatch": ("error", "目录页数与影像页数不一致"),
    "image_corrupt": ("error", "影像文件损坏，无法打开"),
    "low_resolution": ("error", "扫描分辨率低于要求"),
    "colour_mode": ("warning", "色彩模式不常见"),
    "blank_page": ("warning", "疑似空白页"),
    "duplicate_page": ("warning", "疑似重复页"),
    "business_type_unknown": ("error", "无法确定业务类型"),
    "retention_unknown": ("error", "无法确定保管期限"),
    "retention_legacy": ("warning", "旧保管期限（长期/短期）已按规则折算"),
    "date_invalid": ("error", "日期无法识别"),
    "id_number_invalid": ("error", "证件号码校验位不正确"),
    "file_changed": ("error", "影像文件在预扫描后被改动"),
}


class Finding(TypedDict):
    code: str
    severity: Severity
    message: str
    key: str | None  # the row's 档号 (or "第N行" when it has none); None for the delivery as a whole


def finding(code: str, message: str, key: str | None = None) -> Finding:
    return Finding(code=code, severity=CODES[code][0], message=message, key=key)


def blocking(findings: list[Finding]) -> bool:
    return any(f["severity"] == "error" for f in findings)
