"""The ``dgemma`` app, its command groups, and the one way a command fails.

Every command is declared with :func:`command`: it gets an example in its help and the one
failure path of the CLI. A command (or the library function it calls) raises
:class:`~spacy_dgemma.errors.InputError` for bad input or arguments; the user then sees one line
``file:line: [Exxx] what is wrong — how to fix it`` on stderr and the exit code 2, no traceback.
"""
import functools
import os
from pathlib import Path
from typing import Callable, List, Optional

import typer
from wasabi import msg

from spacy_dgemma.errors import InputError, Warnings

EXIT_BAD_INPUT = 2
# Problems or unaligned mentions listed one per line before "… and N more".
MAX_LISTED = 20
DATA_ENV = "HIPE2026_DATA"
DEFAULT_DATA = Path("../shared/hipe2026")

app = typer.Typer(
    name="dgemma",
    help="Who was where, when? Person–place relations (at / isAt) in historical newspapers (HIPE-2026).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ner_app = typer.Typer(
    name="ner",
    help="Raw text: build, train, combine and evaluate the historical PERS/LOC recogniser.",
    no_args_is_help=True,
)
llm_app = typer.Typer(
    name="llm",
    help="DistilledGemma: teacher QLoRA, annotation, distillation and the generative student.",
    no_args_is_help=True,
)
app.add_typer(ner_app, name="ner")
app.add_typer(llm_app, name="llm")


def command(group: typer.Typer, name: str, *, example: str) -> Callable:
    """Declare a command of `group` named `name`, with a usage example shown in its help.

    group: `app`, `ner_app` or `llm_app`.
    name: the command's name on the command line.
    example: one or more example command lines (one per line).
    """
    epilog = "Example:\n\n" + "\n\n".join(f"    {line}" for line in example.strip().splitlines())

    def decorate(func: Callable) -> Callable:
        return group.command(name, epilog=epilog)(exits_on_bad_input(func))

    return decorate


def exits_on_bad_input(func: Callable) -> Callable:
    """Turn an InputError into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InputError as err:
            typer.echo(str(err), err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


def data_dir() -> Path:
    """The HIPE-2026 data: $HIPE2026_DATA, else ../shared/hipe2026."""
    return Path(os.environ.get(DATA_ENV, DEFAULT_DATA))


def report_skipped(skipped: List[InputError]) -> None:
    """Warn about the invalid documents a command skipped (``--skip-invalid``), listing them."""
    if not skipped:
        return
    msg.warn(Warnings.W002.format(n=len(skipped)))
    list_lines([str(problem) for problem in skipped], err=True)


def list_lines(lines: List[str], err: bool = False, limit: Optional[int] = MAX_LISTED) -> None:
    """Print up to `limit` lines indented, then "… and N more"."""
    for line in lines[:limit]:
        typer.echo(f"  {line}", err=err)
    if limit is not None and len(lines) > limit:
        typer.echo(f"  … and {len(lines) - limit} more", err=err)
