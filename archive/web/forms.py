"""Form helpers shared by the console's pages: a form turned into the API's input model, and the 档号 a person
typed or pasted (one per line, or separated by commas, 顿号 or spaces)."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from archive.api.errors import reason
from archive.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)
_SEPARATORS = re.compile(r"[\s,，、;；]+")


def codes_of(text: str) -> list[str]:
    """The 档号 in ``text``, in order, each once."""
    return list(dict.fromkeys(c for c in _SEPARATORS.split(text or "") if c))


def model_of(cls: type[M], data: dict[str, Any], labels: dict[str, str]) -> M:
    """``cls`` from a form, or the refusal the API gives (invalid_request), naming the fields in Chinese."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            field = ".".join(str(p) for p in e["loc"] if not isinstance(p, int))
            why = str(e.get("ctx", {}).get("error", "")) if e["type"] == "value_error" else reason(e)
            problems.append({"field": field, "reason": why or "取值无效"})
        text = "；".join(f"{labels.get(p['field'], '') or '填写内容'}：{p['reason']}" for p in problems[:5])
        raise InvalidInput(f"请更正：{text}", code="invalid_request", detail=problems) from None
