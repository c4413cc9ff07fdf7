"""The ``dgemma`` command line (typer): everyday commands, ``dgemma ner …`` and ``dgemma llm …``.

``_util`` holds the app, the command groups and the one failure path; each module below
declares commands only and calls library functions.
"""
from spacy_dgemma.cli import data, evaluate, llm, ner, predict, visualize  # noqa: F401  (declare the commands)
from spacy_dgemma.cli._util import app

__all__ = ["app"]
