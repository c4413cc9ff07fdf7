"""Fetch the HIPE-2026 release files listed in project.yml's ``assets``.

Each asset is copied from a local mirror of the release (``--source``, e.g. ../shared/hipe2026)
when the mirror has it, else downloaded from its URL; either way it is checked against the
SHA-256 in its description (and weasel's MD5 ``checksum``). Assets marked ``extra`` (the test
sets) may be missing: they are skipped with a message (no workflow step needs them).
``--limit N`` keeps only the first N documents of each file (for quick runs and tests).
"""
import hashlib
import re
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Dict, Optional

import srsly
import typer
from wasabi import msg

DEST_ROOT = "assets/hipe2026/"
SHA256_RE = re.compile(r"sha256: ([0-9a-f]{64})")


def digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file."""
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, asset: Dict) -> Optional[str]:
    """A message when the file does not match the asset's checksums, else None."""
    match = SHA256_RE.search(asset.get("description", ""))
    if match and digest(path, "sha256") != match.group(1):
        return f"{path}: SHA-256 differs from the release ({match.group(1)[:12]}…)"
    if asset.get("checksum") and digest(path, "md5") != asset["checksum"]:
        return f"{path}: MD5 differs from the release ({asset['checksum']})"
    return None


def download(url: str, target: Path, timeout: float = 60.0) -> bool:
    """Download `url` to `target`; False (and a warning) when it cannot be reached."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out)
        return True
    except OSError as err:
        msg.warn(f"Could not download {url}: {err}")
        target.unlink(missing_ok=True)
        return False


def truncate(source: Path, target: Path, limit: int) -> int:
    """Copy the first `limit` non-blank lines (documents) of a JSONL file; all when limit is 0."""
    n = 0
    with source.open("rb") as f, target.open("wb") as out:
        for line in f:
            if not line.strip():
                continue
            if limit and n >= limit:
                break
            out.write(line)
            n += 1
    return n


def fetch(project: Path, source: Optional[Path], limit: int) -> int:
    """Fetch every asset; returns the number of required assets that failed."""
    assets = srsly.read_yaml(project).get("assets", [])
    failures = 0
    for asset in assets:
        dest = Path(asset["dest"])
        rel = asset["dest"][len(DEST_ROOT):] if asset["dest"].startswith(DEST_ROOT) else dest.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        local = source / rel if source is not None else None
        tmp = dest.with_suffix(dest.suffix + ".part")
        if local is not None and local.exists():
            shutil.copyfile(local, tmp)
            origin = f"copied from {local}"
        elif download(asset["url"], tmp):
            origin = f"downloaded from {asset['url']}"
        elif asset.get("extra"):
            msg.warn(f"Skipped {dest}: not in {source} and not downloadable. It is a test set: no "
                     "workflow step needs it; score on it with `dgemma predict` and `dgemma evaluate` once you have it.")
            dest.unlink(missing_ok=True)
            if not any(dest.parent.iterdir()):
                dest.parent.rmdir()
            continue
        else:
            msg.fail(f"Missing {dest}: put the HIPE-2026 release at {source} (--vars.hipe_data) or go online.")
            failures += 1
            continue
        problem = verify(tmp, asset)
        if problem:
            msg.fail(f"{problem}. Delete it and fetch again, or check the mirror {source}.")
            tmp.unlink()
            failures += 1
            continue
        if dest.suffix == ".jsonl":
            n = truncate(tmp, dest, limit)
            tmp.unlink()
            msg.good(f"{dest}: {n} documents ({origin}{', first ' + str(limit) if limit else ''})")
        else:
            tmp.replace(dest)
            msg.good(f"{dest} ({origin})")
    return failures


def main(
    project: Path = typer.Argument(Path("project.yml"), help="project.yml with the asset list"),
    source: Optional[Path] = typer.Option(None, "--source", help="Local mirror of the release (skipped when absent)"),
    limit: int = typer.Option(0, "--limit", help="Keep the first N documents per file (0: all)"),
) -> None:
    if source is not None and not source.exists():
        msg.info(f"No local mirror at {source}: downloading from the release URLs")
        source = None
    failures = fetch(project, source, limit)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    typer.run(main)
