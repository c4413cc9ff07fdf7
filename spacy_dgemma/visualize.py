"""A self-contained HTML page of Docs for reading: who was where, when, and why.

For each document: its newspaper, date and id, the article's own text with its line breaks and
the person and place mentions highlighted, and a table of its relations (person and place linked
to their mentions in the text, `at` and `isAt` with their scores, the evidence). Above them, an
index of the documents, filters (by label, and by person or place) and a CSV export of the table.
One file, inline CSS and a little inline script, no external resource; every input string is
escaped (Jinja2 autoescape).
"""
import csv
import io
import urllib.parse
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import jinja2
from markupsafe import Markup, escape
from spacy.tokens import Doc, Span

from spacy_dgemma.candidates.entities import DEFAULT_PERSON_LABELS, DEFAULT_PLACE_LABELS, get_mentions
from spacy_dgemma.candidates.pairs import no_pairs_reason
from spacy_dgemma.pipeline.records import Relation

PERSON, PLACE = "person", "place"
COLORS = {PERSON: "#f9c784", PLACE: "#8ecae6"}
LABEL_COLORS = {"TRUE": "#c7f0c2", "PROBABLE": "#fff2b3", "FALSE": "#f4d0d0"}
CSV_COLUMNS = (
    "document", "newspaper", "date", "person", "person_id", "place", "place_id",
    "at", "at_score", "isAt", "isAt_score", "evidence",
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: sans-serif; margin: 1.5em auto; max-width: 64em; color: #222; padding: 0 1em; }
header { position: sticky; top: 0; background: #fff; padding: 0.5em 0; border-bottom: 1px solid #ccc; z-index: 1; }
section.doc { border-top: 2px solid #ccc; padding-top: 0.8em; margin-bottom: 2.5em; }
h2 { font-size: 1.2em; margin-bottom: 0.2em; }
p.meta { color: #555; margin-top: 0; }
div.text { white-space: pre-wrap; font-family: Georgia, serif; line-height: 1.6; background: #fafafa; padding: 0.8em; border: 1px solid #eee; }
mark { padding: 0 0.1em; border-radius: 3px; color: inherit; }
mark.person { background: {{ colors.person }}; }
mark.place { background: {{ colors.place }}; }
mark:target { outline: 3px solid #d62828; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; margin-top: 0.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.TRUE { background: {{ labels.TRUE }}; } td.PROBABLE { background: {{ labels.PROBABLE }}; } td.FALSE { background: {{ labels.FALSE }}; }
td.evidence { color: #444; }
p.hint { color: #8a4b00; background: #fff4e0; padding: 0.5em; }
.legend mark { margin-right: 0.6em; }
label { margin-right: 1em; }
</style>
</head>
<body>
<header>
<h1>{{ title }}</h1>
<p class="legend"><mark class="person">person</mark><mark class="place">place</mark>
{{ n_docs }} document(s), {{ n_relations }} relation(s).
<a id="export" download="relations.csv" href="{{ csv_uri }}">Export the table (CSV)</a></p>
<form id="filters" onsubmit="return false">
<label>at <select id="f-at"><option value="">any</option><option>TRUE</option><option>PROBABLE</option><option>FALSE</option></select></label>
<label>isAt <select id="f-isat"><option value="">any</option><option>TRUE</option><option>FALSE</option></select></label>
<label>person or place <input id="f-name" type="search" placeholder="e.g. Gladstone"></label>
<span id="shown"></span>
</form>
</header>
<nav>
<h2>Documents</h2>
<table class="index">
<tr><th>#</th><th>document</th><th>newspaper</th><th>date</th><th>language</th><th>relations (not FALSE)</th></tr>
{% for d in docs %}<tr><td>{{ d.number }}</td><td><a href="#doc-{{ d.number }}">{{ d.title }}</a></td><td>{{ d.newspaper }}</td><td>{{ d.date }}</td><td>{{ d.language }}</td><td>{{ d.n_shown }} / {{ d.relations|length }}</td></tr>
{% endfor %}</table>
</nav>
{% for d in docs %}
<section class="doc" id="doc-{{ d.number }}">
<h2>{{ d.number }}. {{ d.title }}</h2>
<p class="meta">{{ d.facts }}</p>
<div class="text">{{ d.text_html }}</div>
<h3>Relations</h3>
{% if d.relations %}
<table class="relations">
<tr><th>person</th><th>place</th><th>at</th><th>isAt</th><th>evidence</th></tr>
{% for r in d.relations %}<tr class="relation" data-doc="{{ d.title }}" data-newspaper="{{ d.newspaper }}" data-date="{{ d.date }}" data-at="{{ r.at }}" data-at-score="{{ r.at_value }}" data-isat="{{ r.is_at }}" data-isat-score="{{ r.is_at_value }}" data-names="{{ r.names }}">
<td class="person" title="{{ r.person_id }}">{% for name, anchor in r.persons %}{% if not loop.first %}; {% endif %}{% if anchor %}<a href="#{{ anchor }}">{{ name }}</a>{% else %}{{ name }}{% endif %}{% endfor %}</td>
<td class="place" title="{{ r.place_id }}">{% for name, anchor in r.places %}{% if not loop.first %}; {% endif %}{% if anchor %}<a href="#{{ anchor }}">{{ name }}</a>{% else %}{{ name }}{% endif %}{% endfor %}</td>
<td class="{{ r.at }}">{{ r.at }}{{ r.at_score }}</td>
<td class="{{ r.is_at }}">{{ r.is_at }}{{ r.is_at_score }}</td>
<td class="evidence">{{ r.evidence }}</td>
</tr>
{% endfor %}</table>
{% else %}
<p class="norel">No (person, place) pairs.</p>
{% if d.hint %}<p class="hint">{{ d.hint }}</p>{% endif %}
{% endif %}
</section>
{% endfor %}
<script>
(function () {
  var at = document.getElementById("f-at"), isat = document.getElementById("f-isat"), name = document.getElementById("f-name");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.relation"));
  function apply() {
    var a = at.value, i = isat.value, n = name.value.trim().toLowerCase(), shown = 0;
    rows.forEach(function (row) {
      var ok = (!a || row.dataset.at === a) && (!i || row.dataset.isat === i) && (!n || row.dataset.names.indexOf(n) >= 0);
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    document.getElementById("shown").textContent = shown + " of " + rows.length + " relation(s) shown";
  }
  function cell(text) { return '"' + String(text).replace(/"/g, '""') + '"'; }
  document.getElementById("export").addEventListener("click", function () {
    var lines = [{{ csv_columns|tojson }}.map(cell).join(",")];
    rows.forEach(function (row) {
      if (row.hidden) { return; }
      var c = row.cells, d = row.dataset;
      lines.push([d.doc, d.newspaper, d.date, c[0].textContent, c[0].title, c[1].textContent, c[1].title,
                  d.at, d.atScore, d.isat, d.isatScore, c[4].textContent].map(cell).join(","));
    });
    this.href = "data:text/csv;charset=utf-8," + encodeURIComponent(lines.join("\\r\\n") + "\\r\\n");
  });
  var params = new URLSearchParams(window.location.search);
  at.value = params.get("at") || ""; isat.value = params.get("isAt") || ""; name.value = params.get("q") || "";
  [at, isat, name].forEach(function (el) { el.addEventListener("input", apply); el.addEventListener("change", apply); });
  apply();
})();
</script>
</body>
</html>
"""
ENVIRONMENT = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
TEMPLATE = ENVIRONMENT.from_string(PAGE)


@dataclass
class _Mention:
    start: int
    end: int
    kind: str
    anchor: str
    entity_id: str


@dataclass
class _Row:
    person_id: str
    place_id: str
    persons: List[Tuple[str, Optional[str]]]
    places: List[Tuple[str, Optional[str]]]
    at: str
    is_at: str
    at_score: str
    is_at_score: str
    at_value: str
    is_at_value: str
    evidence: str
    names: str


@dataclass
class _DocView:
    number: int
    title: str
    newspaper: str
    date: str
    language: str
    facts: str
    text_html: Markup
    relations: List[_Row] = field(default_factory=list)
    n_shown: int = 0
    hint: Optional[str] = None


def _mentions(doc: Doc, number: int, person_labels: Sequence[str], place_labels: Sequence[str]) -> List[_Mention]:
    """The Doc's person and place mentions in text order, each with its anchor id in the page."""
    persons, places = get_mentions(doc, person_labels, place_labels)
    spans = [(s, PERSON) for s in persons] + [(s, PLACE) for s in places]
    spans.sort(key=lambda item: (item[0].start_char, -item[0].end_char, item[1]))
    return [
        _Mention(span.start_char, span.end_char, kind, f"d{number}-m{i}", span.id_ or span.label_)
        for i, (span, kind) in enumerate(spans, start=1)
    ]


def text_html(text: str, mentions: Sequence[_Mention]) -> Markup:
    """The text, escaped, with each mention wrapped in ``<mark class=KIND id=ANCHOR>``.

    Mentions nest when one holds another; one that overlaps the end of another is cut there.
    mentions: in text order (start ascending, longer first).
    """
    out: List[str] = []
    pos = 0
    open_ends: List[int] = []

    def emit(until: int) -> None:
        nonlocal pos
        while open_ends and open_ends[-1] <= until:
            out.append(str(escape(text[pos : open_ends[-1]])) + "</mark>")
            pos = open_ends.pop()
        out.append(str(escape(text[pos:until])))
        pos = until

    for m in mentions:
        if m.start < pos:  # starts inside a mention that was cut: skip the overlap's start
            continue
        emit(m.start)
        end = min(m.end, open_ends[-1]) if open_ends else m.end
        out.append(f'<mark class="{m.kind}" id="{m.anchor}" title="{escape(m.entity_id)}">')
        open_ends.append(end)
    emit(len(text))
    return Markup("".join(out))


def _names(spans: List[Span], mentions: List[str], anchors: Dict[Tuple[int, int], str]) -> List[Tuple[str, Optional[str]]]:
    """The distinct names of an entity's mentions, each linked to its first mention in the text."""
    names: Dict[str, Optional[str]] = {}
    for span in spans:
        names.setdefault(" ".join(span.text.split()), anchors.get((span.start_char, span.end_char)))
    for mention in mentions if not spans else []:
        names.setdefault(" ".join(mention.split()), None)
    return list(names.items()) or [("—", None)]


def _score(label: Optional[str], scores: Dict[str, float]) -> str:
    """The score of the chosen label, as two decimals ("" when there is none)."""
    value = scores.get(label) if label is not None else None
    return f"{value:.2f}" if isinstance(value, (int, float)) else ""


def evidence(rel: Relation) -> str:
    """One explanation per relation: the shared one, or both when `at` and `isAt` differ."""
    at, is_at = rel.at_explanation or "", rel.is_at_explanation or ""
    if at == is_at or not is_at:
        return at
    if not at:
        return is_at
    return f"at: {at} — isAt: {is_at}"


def _row(rel: Relation, anchors: Dict[Tuple[int, int], str]) -> _Row:
    persons = _names(rel.person_spans, rel.person_mentions, anchors)
    places = _names(rel.place_spans, rel.place_mentions, anchors)
    names = " | ".join(n for n, _ in persons + places).lower()
    at_value, is_at_value = _score(rel.at, rel.at_scores), _score(rel.is_at, rel.is_at_scores)
    return _Row(
        person_id=rel.person_id,
        place_id=rel.place_id,
        persons=persons,
        places=places,
        at=rel.at or "null",
        is_at=rel.is_at or "null",
        at_score=f" ({at_value})" if at_value else "",
        is_at_score=f" ({is_at_value})" if is_at_value else "",
        at_value=at_value,
        is_at_value=is_at_value,
        evidence=evidence(rel),
        names=names,
    )


def doc_view(doc: Doc, number: int, person_labels: Sequence[str] = DEFAULT_PERSON_LABELS, place_labels: Sequence[str] = DEFAULT_PLACE_LABELS) -> _DocView:
    """What the page shows of one Doc."""
    meta = doc._.dgemma_hipe or {}
    media = meta.get("media") or {}
    title = str(meta.get("document_id") or doc.user_data.get("source") or f"Document {number}")
    newspaper = str(media.get("publication_title") or "")
    date, language = str(meta.get("date") or ""), str(meta.get("language") or doc.lang_ or "")
    mentions = _mentions(doc, number, person_labels, place_labels)
    anchors: Dict[Tuple[int, int], str] = {}
    for m in mentions:
        anchors.setdefault((m.start, m.end), m.anchor)
    relations = doc._.dgemma_relations
    view = _DocView(
        number=number,
        title=title,
        newspaper=newspaper,
        date=date,
        language=language,
        facts=" · ".join(x for x in (newspaper, date, language) if x),
        text_html=text_html(doc.text, mentions),
        relations=[_row(rel, anchors) for rel in relations],
        n_shown=sum(1 for rel in relations if (rel.at, rel.is_at) != ("FALSE", "FALSE")),
    )
    if not relations and doc._.dgemma_hipe_pairs is None:
        view.hint = no_pairs_reason(doc, person_labels, place_labels)
    return view


def relations_csv(views: Sequence[_DocView]) -> str:
    """The relations of every document as CSV (the columns of ``CSV_COLUMNS``)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for view in views:
        for r in view.relations:
            writer.writerow([
                view.title, view.newspaper, view.date, "; ".join(n for n, _ in r.persons), r.person_id,
                "; ".join(n for n, _ in r.places), r.place_id, r.at, r.at_value, r.is_at, r.is_at_value, r.evidence,
            ])
    return out.getvalue()


def render_html(
    docs: Iterable[Doc],
    title: str = "spacy-dgemma: who was where, when?",
    person_labels: Sequence[str] = DEFAULT_PERSON_LABELS,
    place_labels: Sequence[str] = DEFAULT_PLACE_LABELS,
) -> str:
    """A complete, self-contained HTML page for the Docs (after a pipeline with ``dgemma_relations``).

    title: the page title.
    person_labels / place_labels: ``doc.ents`` labels shown as persons / places (raw text).
    """
    views = [doc_view(doc, i, person_labels, place_labels) for i, doc in enumerate(docs, start=1)]
    csv_text = relations_csv(views)
    return TEMPLATE.render(
        title=title,
        docs=views,
        n_docs=len(views),
        n_relations=sum(len(v.relations) for v in views),
        colors=COLORS,
        labels=LABEL_COLORS,
        csv_uri="data:text/csv;charset=utf-8," + urllib.parse.quote(csv_text),
        csv_columns=list(CSV_COLUMNS),
    )
