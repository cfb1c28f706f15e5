"""How commands talk to the person at the terminal: rich consoles and the error wrapper every command uses."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from archive.errors import ERRORS

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Print an error (archive/, storage/, signing/, search/) as its Chinese message and code, exit 2; no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ERRORS as exc:
            err.print(f"[bold red]错误[/] {exc.message}  [dim]({exc.code})[/]", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps fn's signature
