"""A self-contained HTML view of Docs: persons and places highlighted, relations in a table.

The text is drawn by displaCy's span renderer (so overlapping mentions show); the page has
inline CSS only: no scripts, fonts or other external resources.
"""
import html
import warnings
from typing import Iterable, List, Optional, Sequence

from spacy import displacy
from spacy.tokens import Doc, Span, SpanGroup

from spacy_dgemma.candidates.entities import DEFAULT_PERSON_LABELS, DEFAULT_PLACE_LABELS
from spacy_dgemma.keys import PERSONS_KEY, PLACES_KEY
from spacy_dgemma.pipeline.records import Relation

VIEW_KEY = "dgemma_view"
PERSON, PLACE = "PERSON", "PLACE"
COLORS = {PERSON: "#f9c784", PLACE: "#8ecae6"}
LABEL_CLASS = {"TRUE": "true", "PROBABLE": "probable", "FALSE": "false"}

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 60em; color: #222; }}
section.doc {{ border-top: 2px solid #ccc; padding-top: 1em; margin-bottom: 2.5em; }}
h2 {{ font-size: 1.2em; }}
p.meta {{ color: #666; font-size: 0.9em; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }}
th {{ background: #f2f2f2; }}
td.true {{ background: #c7f0c2; }} td.probable {{ background: #fff2b3; }} td.false {{ background: #f4d0d0; }}
td.explanation {{ color: #444; font-size: 0.9em; }}
.legend span {{ padding: 0.1em 0.5em; margin-right: 0.5em; border-radius: 3px; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="legend"><span style="background:{person_color}">{person}</span><span style="background:{place_color}">{place}</span></p>
{body}
</body>
</html>
"""


def mention_spans(
    doc: Doc,
    person_labels: Sequence[str] = DEFAULT_PERSON_LABELS,
    place_labels: Sequence[str] = DEFAULT_PLACE_LABELS,
) -> List[Span]:
    """Person and place mentions as spans labelled PERSON / PLACE (span groups first, else ents)."""
    if PERSONS_KEY in doc.spans or PLACES_KEY in doc.spans:
        persons = list(doc.spans.get(PERSONS_KEY, []))
        places = list(doc.spans.get(PLACES_KEY, []))
    else:
        persons = [e for e in doc.ents if e.label_ in person_labels]
        places = [e for e in doc.ents if e.label_ in place_labels]
    spans = [Span(doc, s.start, s.end, label=PERSON) for s in persons]
    spans += [Span(doc, s.start, s.end, label=PLACE) for s in places]
    return sorted(spans, key=lambda s: (s.start, s.end))


def _text_html(doc: Doc, spans: List[Span]) -> str:
    view = doc.copy()
    view.spans[VIEW_KEY] = SpanGroup(view, name=VIEW_KEY, spans=[Span(view, s.start, s.end, label=s.label_) for s in spans])
    options = {"spans_key": VIEW_KEY, "colors": COLORS}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\[W117\]")  # a Doc without mentions is fine
        return displacy.render(view, style="span", options=options, page=False, jupyter=False)


def _mentions(spans: List[Span], mentions: List[str]) -> str:
    names = list(dict.fromkeys([s.text for s in spans] or mentions))
    return "; ".join(html.escape(n.replace("\n", " ")) for n in names) or "&mdash;"


def _label_cell(label: Optional[str], scores: dict) -> str:
    label_text = label if label is not None else "null"
    score = scores.get(label) if label is not None else None
    score_text = f" ({score:.2f})" if isinstance(score, (int, float)) else ""
    css = LABEL_CLASS.get(label or "", "")
    return f'<td class="{css}">{html.escape(label_text)}{score_text}</td>'


def relations_table(relations: List[Relation]) -> str:
    """An HTML table of relation records: entities, labels with scores, explanations."""
    if not relations:
        return '<p class="norel">No (person, place) pairs.</p>'
    rows = []
    for rel in relations:
        rows.append(
            "<tr>"
            f'<td class="person" title="{html.escape(rel.person_id)}">{_mentions(rel.person_spans, rel.person_mentions)}</td>'
            f'<td class="place" title="{html.escape(rel.place_id)}">{_mentions(rel.place_spans, rel.place_mentions)}</td>'
            f"{_label_cell(rel.at, rel.at_scores)}"
            f"{_label_cell(rel.is_at, rel.is_at_scores)}"
            f'<td class="explanation">{html.escape(rel.at_explanation or "")}</td>'
            f'<td class="explanation">{html.escape(rel.is_at_explanation or "")}</td>'
            "</tr>"
        )
    head = "<tr><th>person</th><th>place</th><th>at</th><th>isAt</th><th>at: why</th><th>isAt: why</th></tr>"
    return f'<table class="relations">{head}{"".join(rows)}</table>'


def doc_html(doc: Doc, number: int = 1) -> str:
    """One document's section: title, metadata, highlighted text and relation table."""
    meta = doc._.dgemma_hipe or {}
    title = meta.get("document_id") or doc.user_data.get("source") or f"Document {number}"
    facts = [f"{k}: {meta[k]}" for k in ("date", "language") if meta.get(k)]
    meta_html = f'<p class="meta">{html.escape(" · ".join(facts))}</p>' if facts else ""
    return (
        f'<section class="doc" id="doc-{number}"><h2>{html.escape(str(title))}</h2>{meta_html}'
        f'<div class="text">{_text_html(doc, mention_spans(doc))}</div>'
        f"<h3>Relations</h3>{relations_table(doc._.dgemma_relations)}</section>"
    )


def render_html(docs: Iterable[Doc], title: str = "spacy-dgemma: who was where, when?") -> str:
    """A complete, self-contained HTML page for the Docs."""
    body = "\n".join(doc_html(doc, i) for i, doc in enumerate(docs, start=1))
    return PAGE.format(
        title=html.escape(title),
        body=body,
        person=PERSON,
        place=PLACE,
        person_color=COLORS[PERSON],
        place_color=COLORS[PLACE],
    )
