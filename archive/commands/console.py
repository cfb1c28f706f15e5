"""How commands talk to the person at the terminal: rich consoles and the error wrapper every command uses."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from archive.errors import ERRORS

# Printed into a pipe, a file or a pager (no COLUMNS) rich assumes 80 columns and cuts every table cell to "…": as
# wide as the content instead (a table is only as wide as its content; a terminal keeps its own width).
PIPE_WIDTH = 1000


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    piped = "COLUMNS" not in os.environ and not (stream is not None and stream.isatty())
    return Console(stderr=stderr, soft_wrap=True, width=PIPE_WIDTH if piped else None)


out = _console()
err = _console(stderr=True)
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
