"""What every ``remora`` sub-command shares: consoles and the one-red-line failure rule.

:func:`command` wraps a command so that expected failures (``RemoraError``, ``OSError``, an
interrupt) print one ``error: …`` line and exit non-zero; an unexpected exception still prints
one line (with its type, for a bug report) instead of a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from remora_lsp.errors import RemoraError

__all__ = ["command", "fail", "stderr", "stdout"]

P = ParamSpec("P")
R = TypeVar("R")


def stdout() -> Console:
    """Console for results."""
    return Console(soft_wrap=True, highlight=False)


def stderr() -> Console:
    """Console for progress and errors."""
    return Console(stderr=True, soft_wrap=True, highlight=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one red ``error:`` line; return the Exit to raise."""
    stderr().print(Text(f"error: {message}", style="bold red"))
    return typer.Exit(code)


def command(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one red line and a non-zero exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except RemoraError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise fail(f"{exc.strerror or exc}{where}") from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except Exception as exc:  # a bug: still one line, with the exception type to report
            raise fail(f"internal error ({type(exc).__name__}): {exc}") from None

    return wrapper
