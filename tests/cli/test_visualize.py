"""`dgemma visualize`: self-contained HTML with highlighted mentions and a relation table, checked
as rendered by headless Chromium."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from spacy_dgemma.cli import app
from spacy_dgemma.pipeline.records import Relation
from spacy_dgemma.visualize import relations_table, render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "artifacts"


def _visualize(tmp_path: Path, hipe_records) -> Path:
    data = tmp_path / "docs.jsonl"
    data.write_text("\n".join(json.dumps(hipe_records[lg]) for lg in ("en", "de", "fr")) + "\n", encoding="utf8")
    out = tmp_path / "view.html"
    result = CliRunner().invoke(app, ["visualize", str(data), "--model", "baseline", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_html_is_self_contained_and_complete(tmp_path, hipe_records):
    page = _visualize(tmp_path, hipe_records).read_text(encoding="utf8")
    assert "<script" not in page and "@import" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)
    for record in hipe_records.values():
        assert record["document_id"] in page
        for pair in record["sampled_pairs"]:
            for mention in pair["pers_mentions_list"] + pair["loc_mentions_list"]:
                assert mention in page
    assert page.count('<table class="relations">') == 3
    assert "PERSON" in page and "PLACE" in page


def test_relations_table_cells():
    nlp = spacy.blank("en")
    doc = nlp("Mr. Smith was in Paris & <Lyon>.")
    rel = Relation(
        person_id="p1", place_id="l1", person_spans=[doc[1:2]], place_spans=[doc[4:5]],
        at="PROBABLE", is_at="FALSE", at_explanation="says 'was in' <b>", at_scores={"PROBABLE": 0.61},
        is_at_scores={"FALSE": 0.9},
    )
    table = relations_table([rel])
    assert '<td class="probable">PROBABLE (0.61)</td>' in table
    assert '<td class="false">FALSE (0.90)</td>' in table
    assert "&lt;b&gt;" in table and "<b>" not in table
    assert "No (person, place) pairs" in relations_table([])
    assert "Document 1" in render_html([nlp("Nothing here.")])


def test_bad_input_exits_cleanly(tmp_path):
    result = CliRunner().invoke(app, ["visualize", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 2
    assert "missing.txt" in result.output


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package 'chromium'; `make test` installs it)")
def test_chromium_renders_entities_and_relations(tmp_path, hipe_records):
    out = _visualize(tmp_path, hipe_records)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "visualize.png"
    flags = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = out.resolve().as_uri()
    shot = subprocess.run(flags + [f"--screenshot={screenshot}", "--window-size=1200,1600", url], capture_output=True, timeout=120)
    assert shot.returncode == 0, shot.stderr.decode()[-2000:]
    assert screenshot.stat().st_size > 10_000
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, timeout=120)
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    rendered = dom.stdout.decode("utf8")
    en = hipe_records["en"]
    # The mentions are inside displaCy's highlighted span markup, the relations in table rows.
    person = en["sampled_pairs"][0]["pers_mentions_list"][0].split()[-1]
    assert re.search(r"spans.*" + re.escape(person), rendered, re.S)
    rows = [r for r in re.findall(r"<tr>(.*?)</tr>", rendered, re.S) if "<td" in r]
    n_pairs = sum(len(r["sampled_pairs"]) for r in hipe_records.values())
    assert len(rows) == n_pairs
    assert all(re.search(r'class="(true|probable|false)"', row) for row in rows)
