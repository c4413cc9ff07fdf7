"""The README a newcomer reads: short, every Python block runs and prints what it shows, the
figures it quotes are those of the metrics JSON, its links resolve, docs/project.md is current."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf8")
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def _python_blocks():
    """(code, expected output or None): each python block and the text block right after it."""
    blocks = [(m.group(1), m.group(2), m.start(), m.end()) for m in BLOCK.finditer(README)]
    out = []
    for i, (lang, code, _, end) in enumerate(blocks):
        if lang != "python":
            continue
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        expected = following[1] if following and following[0] == "text" and not README[end : following[2]].strip() else None
        out.append((code, expected))
    return out


def test_readme_is_short():
    size = len(README.encode("utf8"))
    assert size < 8000, f"README.md has {size} bytes: keep it under 8,000 (details go to docs/)"


@pytest.mark.parametrize("code,expected", _python_blocks(), ids=lambda x: (x or "")[:30].split("\n")[0])
def test_python_block_runs_as_shown(code, expected):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    if expected is not None:
        assert result.stdout == expected


def test_quoted_dev_score_is_the_metrics_json():
    scores = REPO / "metrics" / "compact" / "scores.json"
    if not scores.exists():
        pytest.skip("metrics/compact/scores.json is written by `spacy project run cpu`")
    row = next(line for line in README.splitlines() if line.startswith("| `xx_dgemma_relations` "))
    quoted = row.split("|")[4].strip()
    assert quoted == f"{json.loads(scores.read_text())['mean']:.3f}"


def test_local_links_resolve():
    for target in re.findall(r"\]\(((?!https?:)[^)#]+)\)", README):
        assert (REPO / target).exists(), f"README links to {target}, which does not exist"


def test_generated_project_docs_are_current(tmp_path):
    out = tmp_path / "project.md"
    subprocess.run([sys.executable, "-m", "weasel", "document", str(REPO), "--output", str(out)], check=True, capture_output=True)
    assert (REPO / "docs" / "project.md").read_text(encoding="utf8") == out.read_text(encoding="utf8"), (
        "docs/project.md is out of date: python -m weasel document . --output docs/project.md"
    )
