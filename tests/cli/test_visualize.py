"""`dgemma visualize`: one self-contained HTML page a historian can read, checked as rendered by
headless Chromium (DOM after the page's script ran, and the pixels of a screenshot)."""
import csv
import io
import json
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from spacy_dgemma.cli import app
from spacy_dgemma.pipeline.records import Relation
from spacy_dgemma.visualize import COLORS, CSV_COLUMNS, LABEL_COLORS, evidence, render_html, text_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "artifacts"
RAW = "Mr. Gladstone left London.\nHe returns soon."


def _visualize(tmp_path: Path, hipe_records, *extra: str) -> Path:
    data = tmp_path / "docs.jsonl"
    data.write_text("\n".join(json.dumps(hipe_records[lg]) for lg in ("en", "de", "fr")) + "\n", encoding="utf8")
    out = tmp_path / "view.html"
    result = CliRunner().invoke(app, ["visualize", str(data), *extra, "--model", "baseline", "--output", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_page_is_self_contained_and_keeps_the_articles_text(tmp_path, hipe_records):
    page = _visualize(tmp_path, hipe_records).read_text(encoding="utf8")
    assert "<link" not in page and "@import" not in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    en = hipe_records["en"]
    # The article's own text: line breaks kept, no re-spacing of tokens ("Aug. 18." not "Aug . 18 .").
    assert "</mark>, Aug. 18.\n<mark" in page
    # Newspaper and date, and an index that links to each document.
    assert "Test Gazette · 1900-08-18 · en" in page
    for i, record in enumerate(hipe_records[lg] for lg in ("en", "de", "fr")):
        assert f'<a href="#doc-{i + 1}">{record["document_id"]}</a>' in page
    rows = re.findall(r'<tr class="relation".*?</tr>', page, re.S)
    assert len(rows) == sum(len(hipe_records[lg]["sampled_pairs"]) for lg in ("en", "de", "fr"))
    # A relation row links its person and place to their mentions in the text.
    smith = next(r for r in rows if "Mr. John Smith" in r and ">Dublin<" in r)
    for anchor in re.findall(r'href="#(d1-m\d+)"', smith):
        mention = re.search(rf'<mark class="(person|place)" id="{anchor}"[^>]*>([^<]*)</mark>', page)
        assert mention and mention.group(2) in ("Mr. John Smith", "Dublin")
    assert 'data-names="napoleon bonaparte | paris"' in page  # an unaligned mention is listed, unlinked
    assert en["document_id"] in page


def test_text_is_escaped_and_mentions_nest():
    text = "<b>Lord & Lady Smith</b> of York"
    # "Lady Smith" nests in "Lord & Lady Smith"; "Smith</b> of" overlaps their end and is cut there.
    from spacy_dgemma.visualize import _Mention

    mentions = [_Mention(3, 20, "person", "a1", "p1"), _Mention(10, 20, "person", "a2", "p<2>"),
                _Mention(15, 27, "person", "a3", "p3"), _Mention(28, 32, "place", "a4", "l1")]
    html = str(text_html(text, mentions))
    assert html == (
        '&lt;b&gt;<mark class="person" id="a1" title="p1">Lord &amp; <mark class="person" id="a2" title="p&lt;2&gt;">Lady '
        '<mark class="person" id="a3" title="p3">Smith</mark></mark></mark>&lt;/b&gt; of '
        '<mark class="place" id="a4" title="l1">York</mark>'
    )


def test_one_evidence_column_and_escaped_cells():
    nlp = spacy.blank("en")
    doc = nlp("Mr. Smith was in Paris & <Lyon>.")
    same = Relation(person_id="p1", place_id="l1", at_explanation="x", is_at_explanation="x")
    assert evidence(same) == "x"
    differ = Relation(person_id="p1", place_id="l1", at_explanation="near", is_at_explanation="born")
    assert evidence(differ) == "at: near — isAt: born"
    doc._.dgemma_relations = [
        Relation(person_id="p<1>", place_id="l1", person_spans=[doc[1:2]], place_spans=[doc[4:5]], at="PROBABLE",
                 is_at="FALSE", at_explanation="says 'was in' <b>", at_scores={"PROBABLE": 0.61}, is_at_scores={"FALSE": 0.9})
    ]
    page = render_html([doc])
    assert '<td class="PROBABLE">PROBABLE (0.61)</td>' in page and '<td class="FALSE">FALSE (0.90)</td>' in page
    assert "&lt;b&gt;" in page and "<b>" not in page and 'title="p&lt;1&gt;"' in page
    assert page.count("<th>evidence</th>") == 1 and "at: why" not in page


def test_csv_export_holds_every_relation(tmp_path, hipe_records):
    page = _visualize(tmp_path, hipe_records).read_text(encoding="utf8")
    uri = re.search(r'id="export" download="relations.csv" href="data:text/csv;charset=utf-8,([^"]*)"', page).group(1)
    rows = list(csv.reader(io.StringIO(urllib.parse.unquote(uri.replace("&amp;", "&")))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) - 1 == sum(len(hipe_records[lg]["sampled_pairs"]) for lg in ("en", "de", "fr"))
    first = dict(zip(rows[0], rows[1]))
    assert first["document"] == hipe_records["en"]["document_id"] and first["newspaper"] == "Test Gazette"
    assert first["at"] in ("TRUE", "PROBABLE", "FALSE") and float(first["at_score"]) > 0


def test_raw_text_without_recogniser_says_why_there_are_no_pairs(tmp_path):
    text = tmp_path / "note.txt"
    text.write_text(RAW, encoding="utf8")
    out = tmp_path / "raw.html"
    with pytest.warns(UserWarning, match="W010"):
        result = CliRunner().invoke(app, ["visualize", str(text), "--output", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf8")
    assert "No (person, place) pairs." in page
    assert re.search(r'<p class="hint">\[W010\].*No recogniser has run', page)
    assert "Mr. Gladstone left London.\nHe returns soon." in page


def test_output_is_written_atomically(tmp_path, hipe_records, monkeypatch):
    out = tmp_path / "view.html"
    out.write_text("previous page", encoding="utf8")
    data = tmp_path / "docs.jsonl"
    data.write_text(json.dumps(hipe_records["en"]) + "\n", encoding="utf8")

    def broken(*args, **kwargs):
        raise RuntimeError("rendering failed")

    import spacy_dgemma.util

    real = spacy_dgemma.util.AtomicWriter.__enter__

    def enter_then_fail(self):
        handle = real(self)
        handle.write("half a page")
        monkeypatch.setattr(handle, "write", broken)
        return handle

    monkeypatch.setattr(spacy_dgemma.util.AtomicWriter, "__enter__", enter_then_fail)
    result = CliRunner().invoke(app, ["visualize", str(data), "--output", str(out)])
    assert result.exit_code != 0
    assert out.read_text(encoding="utf8") == "previous page"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_input_exits_cleanly(tmp_path):
    result = CliRunner().invoke(app, ["visualize", str(tmp_path / "missing.txt"), "--output", str(tmp_path / "x.html")])
    assert result.exit_code == 2 and "missing.txt" in result.output and "[E007]" in result.output
    odd = tmp_path / "page.html"
    odd.write_text("<p>hi</p>", encoding="utf8")
    result = CliRunner().invoke(app, ["visualize", str(odd), "--output", str(tmp_path / "x.html")])
    assert result.exit_code == 2 and "[E068]" in result.output and "Traceback" not in result.output


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
        "--force-color-profile=srgb", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run(flags + list(args), capture_output=True, timeout=120)


def _rgb(color: str):
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package 'chromium'; `make test` installs it)")
def test_chromium_renders_rows_filters_and_highlights(tmp_path, hipe_records):
    image = pytest.importorskip("PIL.Image")
    out = _visualize(tmp_path, hipe_records)
    n_pairs = sum(len(hipe_records[lg]["sampled_pairs"]) for lg in ("en", "de", "fr"))
    # The DOM after the page's script ran: every relation row, and the filters of the query string applied.
    url = out.resolve().as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    rendered = dom.stdout.decode("utf8")
    assert len(re.findall(r'<tr class="relation"', rendered)) == n_pairs
    assert f"{n_pairs} of {n_pairs} relation(s) shown" in rendered
    filtered = _chromium(tmp_path, "--dump-dom", url + "?q=dupont").stdout.decode("utf8")
    visible = [r for r in re.findall(r'<tr class="relation"[^>]*>', filtered) if "hidden" not in r]
    assert len(visible) == 2 and all("pierre dupont" in r for r in visible)
    # The screenshot: the page is drawn with the highlighted persons and places and coloured labels.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "visualize.png"
    shot = _chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1200,1400", url)
    assert shot.returncode == 0, shot.stderr.decode()[-2000:]
    with image.open(screenshot) as png:
        colors = {rgb: n for n, rgb in png.convert("RGB").getcolors(maxcolors=1 << 20)}
    for name, color in {**COLORS, "TRUE": LABEL_COLORS["TRUE"], "FALSE": LABEL_COLORS["FALSE"]}.items():
        assert colors.get(_rgb(color), 0) > 500, f"{name} ({color}) is not on the screenshot"
