"""The ``dgemma`` command line (typer). Each module below adds its commands to ``app``.

Commands are thin layers over library functions; they print with wasabi and exit with code 2
and a one-line message (no traceback) on bad input.
"""
import typer

app = typer.Typer(
    name="dgemma",
    help="Who was where, when? Person–place relations in historical newspapers (HIPE-2026).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Command modules register themselves on `app` when imported.
from . import io_commands  # noqa: E402,F401
from . import ner_commands  # noqa: E402,F401
from . import llm_commands  # noqa: E402,F401
