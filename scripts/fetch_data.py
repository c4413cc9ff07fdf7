"""Fetch the HIPE-2026 release into assets/ with weasel's own asset step (MD5 checksums checked).

SOURCE is a local copy of the release (the default, ../shared/hipe2026) or the release itself
(https://raw.githubusercontent.com/hipe-eval/HIPE-2026-data/v1.0/data): project.yml's assets
read it as ``${vars.hipe_data}``. This is ``spacy project assets . --vars.hipe_data SOURCE``
with a one-line message instead of a traceback when the source is missing or unreachable.
"""
from pathlib import Path

import typer
from wasabi import msg
from weasel.cli.assets import project_assets

from spacy_dgemma.cli._util import exits_on_bad_input
from spacy_dgemma.errors import InputError


@exits_on_bad_input
def main(
    project_dir: Path = typer.Argument(Path("."), help="The project folder (with project.yml)"),
    source: str = typer.Option(..., "--source", help="Local copy of the HIPE-2026 release, or its URL"),
) -> None:
    if "://" not in source and not (Path(source) / "newspapers").is_dir():
        raise InputError.of("E070", source)
    try:
        project_assets(project_dir, overrides={"vars.hipe_data": source})
    except OSError as err:
        raise InputError.of("E071", source, dest=getattr(err, "filename", None) or source, detail=str(err).splitlines()[0]) from err
    msg.info(
        "The test sets (newspapers test A, surprise test B) are `extra` assets, withheld from local copies: "
        "no step needs them; `spacy project assets . --extra --vars.hipe_data URL` fetches them where they are published."
    )


if __name__ == "__main__":
    typer.run(main)
