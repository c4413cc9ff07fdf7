"""Properties of the reader and of the fast paths of `dgemma predict`.

Random bytes and random JSON never make the reader fail otherwise than with an InputError;
the schema's fast check never accepts what jsonschema refuses; the warm tokenizer gives the
tokens spaCy gives; and `predict_files` writes, byte for byte, what the plain composition of
the library (read, nlp.pipe, doc_to_record, dumps) writes.
"""
import copy
import json
import math
from functools import lru_cache
from pathlib import Path

import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.attrs import IS_SPACE, NORM, ORTH, SPACY
from spacy.tokens import Doc

from spacy_dgemma.errors import InputError
from spacy_dgemma.hipe import ReadStats, iter_records, parse_record, record_to_doc
from spacy_dgemma.hipe.read import DocMaker, tokenizer_language
from spacy_dgemma.hipe.validate import _conforms, _validator
from spacy_dgemma.hipe.write import doc_to_record, dumps
from spacy_dgemma.predict import load_pipeline, predict_files
from tests.util import HIPE_RECORDS, strip_labels

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO.parent / "shared" / "hipe2026" / "newspapers"
COMPACT = REPO / "training" / "compact-all" / "model-last"
LABELS = ("at", "isAt", "at_explanation", "isAt_explanation")
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Any JSON value Python's json module can write, NaN, infinities and lone surrogates included.
ANY_TEXT = st.text(st.characters(codec=None) | st.characters(categories=["Cs"]), max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4),
    max_leaves=25,
)


def read_back(path):
    """The records read and the problems skipped, with skip_invalid."""
    stats = ReadStats()
    records = [item.record for item in iter_records(path, skip_invalid=True, stats=stats)]
    return records, stats.skipped


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes_give_records_or_input_errors(tmp_path, data):
    path = tmp_path / "random.jsonl"
    path.write_bytes(data)
    records, skipped = read_back(path)
    assert all(_validator().is_valid(r) for r in records)
    assert all(isinstance(problem, InputError) and problem.message.startswith("[E") for problem in skipped)
    try:
        assert list(iter_records(path)) is not None
    except InputError:
        pass


@SETTINGS
@given(JSON, st.booleans())
def test_random_json_gives_records_or_input_errors(tmp_path, value, ascii_only):
    path = tmp_path / "random.jsonl"
    path.write_bytes(json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass") + b"\n")
    records, skipped = read_back(path)
    assert len(records) + len(skipped) == 1
    assert not records or records[0] == value  # a record is read exactly, or refused with a reason


NAME = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=10)


@st.composite
def hipe_records(draw):
    """Valid records with random unicode text, mentions taken from the text or not, extra fields."""
    text = draw(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200))
    pairs = []
    for i in range(draw(st.integers(0, 4))):
        mentions = []
        for _ in range(2):
            if text and draw(st.booleans()):
                start = draw(st.integers(0, len(text) - 1))
                mentions.append(text[start : start + draw(st.integers(1, 12))])
            else:
                mentions.append(draw(NAME))
        pairs.append({
            "pers_entity_id": f"p{i}", "pers_wikidata_QID": draw(st.none() | NAME), "pers_mentions_list": mentions[:1],
            "loc_entity_id": f"l{i}", "loc_wikidata_QID": None, "loc_mentions_list": mentions[1:],
            "at": draw(st.sampled_from(["TRUE", "FALSE", "PROBABLE", None])), "isAt": draw(st.sampled_from(["TRUE", "FALSE", None])),
        })
    record = {
        "document_id": draw(NAME), "media": {"publication_title": draw(NAME), "time_period": "1850-1950", "source_type": "Newspaper"},
        "source": draw(NAME), "date": draw(st.none() | st.just("1900-01-01")), "language": draw(st.sampled_from(["en", "de", "fr", "la", ""])),
        "text": text, "sampled_pairs": pairs,
    }
    if draw(st.booleans()):
        record["extra"] = draw(st.recursive(st.integers() | NAME, lambda c: st.lists(c, max_size=3), max_leaves=6))
    return record


@settings(SETTINGS, max_examples=40)
@given(hipe_records(), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_valid_records_round_trip_through_predict(tmp_path, record, ending):
    """Every valid record is read as written and comes out with the same fields, as standard JSON."""
    path = tmp_path / "input.jsonl"
    other = dict(strip_labels(HIPE_RECORDS["de"]), document_id=record["document_id"] + "-other")
    path.write_bytes(ending.join(json.dumps(r, ensure_ascii=False).encode() for r in (record, other)) + ending)
    assert [item.record for item in iter_records(path)] == [record, other]
    out = tmp_path / "out.jsonl"
    predict_files([path], out, baseline(), progress=False)
    written = [json.loads(row, parse_constant=pytest.fail) for row in out.read_bytes().decode("utf-8").split("\n") if row]
    assert len(written) == 2
    for before, after in zip((record, other), written):
        assert list(after) == list(before)
        assert {k: v for k, v in after.items() if k != "sampled_pairs"} == {k: v for k, v in before.items() if k != "sampled_pairs"}
        for given_pair, pair in zip(before["sampled_pairs"], after["sampled_pairs"], strict=True):
            assert {k: v for k, v in pair.items() if k not in LABELS} == {k: v for k, v in given_pair.items() if k not in LABELS}
            assert pair["at"] in ("TRUE", "PROBABLE", "FALSE") and pair["isAt"] in ("TRUE", "FALSE")


def mutations(record):
    """Small damages of a valid record, for the fast schema check."""
    yield {k: v for k, v in record.items() if k != "text"}
    yield dict(record, date=1900)
    yield dict(record, media=dict(record["media"], source_type=None))
    yield dict(record, sampled_pairs={"not": "a list"})
    for key in ("at", "isAt", "pers_mentions_list", "loc_wikidata_QID", "at_explanation", "pers_entity_id"):
        for value in (True, 1, 1.5, "MAYBE", ["a", "a"], [1], None, {}):
            changed = copy.deepcopy(record)
            if changed["sampled_pairs"]:
                changed["sampled_pairs"][0][key] = value
                yield changed


@pytest.mark.parametrize("lang", ["en", "de", "fr"])
def test_the_fast_schema_check_never_accepts_what_jsonschema_refuses(lang):
    record = strip_labels(HIPE_RECORDS[lang])
    assert _conforms(record)
    for changed in mutations(record):
        if _conforms(changed):
            assert _validator().is_valid(changed), changed


@SETTINGS
@given(JSON)
def test_the_fast_schema_check_on_random_json(value):
    if _conforms(value):
        assert _validator().is_valid(value)


# --- the tokenizer


@lru_cache(maxsize=None)
def baseline():
    return load_pipeline("baseline")


@lru_cache(maxsize=None)
def blank(lang):
    return spacy.blank(lang)


def recreated(text, lang, vocab):
    """The Docs `DocMaker(vocab=...)` made before: a blank pipeline's tokens, re-created in `vocab`."""
    doc = blank(lang).make_doc(text)
    return Doc(vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])


TOKEN_ATTRS = [ORTH, NORM, SPACY, IS_SPACE]
OCR_PIECES = list(" \n\n\t\xa0-¬.,;:'’\"«»()[]ſﬁ") + [
    "Mr.", "Dr.", "z.B.", "l'", "d'", "Dec.", "n't", "St.", "Paris", "Mme", "1900", "U.S.A.", "e-mail", "http://x.ch", "qu'il"]
OCR_TEXT = st.lists(st.sampled_from(OCR_PIECES), max_size=30).map("".join)


@pytest.fixture(scope="module")
def pipeline_vocab():
    return spacy.blank("xx").vocab


@SETTINGS
@given(st.lists(OCR_TEXT, min_size=1, max_size=4), st.sampled_from(["en", "de", "fr", "xx"]))
def test_docmaker_gives_the_tokens_of_a_recreated_doc(pipeline_vocab, texts, lang):
    make = DocMaker(vocab=pipeline_vocab)
    for text in texts + texts:  # the second time from the warm cache
        doc = make(text, lang)
        expected = recreated(text, tokenizer_language(lang), pipeline_vocab)
        assert doc.vocab is pipeline_vocab and doc.text == text
        assert doc.to_array(TOKEN_ATTRS).tolist() == expected.to_array(TOKEN_ATTRS).tolist()


def test_warm_tokenizer_forgets_and_stays_right(pipeline_vocab):
    from spacy_dgemma.hipe.read import WarmTokenizer, _in_vocab

    warm = WarmTokenizer(_in_vocab(blank("en").tokenizer, pipeline_vocab), max_seen=5)
    texts = ["Mr. Smith's dog, Dec. 3rd.", "e-mail http://x.ch n't l'état", "Mr. Smith's dog, Dec. 3rd."] * 3
    for text in texts:
        assert warm(text).to_array(TOKEN_ATTRS).tolist() == recreated(text, "en", pipeline_vocab).to_array(TOKEN_ATTRS).tolist()
        assert len(warm._seen) <= 5


def test_docmaker_on_the_shared_texts(pipeline_vocab):
    files = sorted(TRAIN.glob("*.jsonl"))
    if not files:
        pytest.skip(f"no shared data at {TRAIN}")
    make = DocMaker(vocab=pipeline_vocab)
    for file in files:
        for item in iter_records(file):
            text, lang = item.record["text"], item.record["language"]
            assert make(text, lang).to_array(TOKEN_ATTRS).tolist() == recreated(text, lang, pipeline_vocab).to_array(TOKEN_ATTRS).tolist()


def test_docmaker_tokenizes_any_length(pipeline_vocab):
    text = "Paris, 3 mai. " * 80_000
    assert len(text) > blank("fr").max_length
    assert len(DocMaker(vocab=pipeline_vocab)(text, "fr")) == len(DocMaker()(text, "fr")) == len(blank("fr").tokenizer(text))


# --- predict_files against the plain composition of the library


def reference_output(files, nlp):
    """What `dgemma predict` wrote before its fast paths: records read one by one, Docs made by a
    blank pipeline and re-created in the pipeline's vocab, records deep-copied, nlp.pipe,
    doc_to_record with doc.text, dumps."""
    def old_make_doc(text, language):
        return recreated(text, tokenizer_language(language), nlp.vocab)

    docs = [record_to_doc(item.record, make_doc=old_make_doc) for item in iter_records(files)]
    return "".join(dumps(doc_to_record(doc)) + "\n" for doc in nlp.pipe(docs)).encode("utf-8")


@pytest.mark.parametrize("model", ["baseline", "compact"])
def test_predict_writes_what_the_plain_library_writes_on_the_train_set(tmp_path, model):
    files = sorted(TRAIN.glob("*.jsonl"))
    if not files:
        pytest.skip(f"no shared data at {TRAIN}")
    if model == "compact" and not COMPACT.exists():
        pytest.skip(f"{COMPACT} not built (spacy project run cpu .)")
    nlp = load_pipeline("baseline" if model == "baseline" else str(COMPACT))
    out = tmp_path / "predictions.jsonl"
    predict_files(files, out, nlp, progress=False)
    assert out.read_bytes() == reference_output(files, nlp)
    two = tmp_path / "two.jsonl"
    predict_files(files, two, nlp, n_process=2, batch_size=7, progress=False)
    assert two.read_bytes() == out.read_bytes()


def test_parse_record_refuses_what_json_loads_accepts():
    line = json.dumps(dict(strip_labels(HIPE_RECORDS["en"]), score=math.nan))
    assert json.loads(line)["score"] != json.loads(line)["score"]  # Python reads NaN ...
    with pytest.raises(InputError, match="E102"):  # ... the reader does not
        parse_record(line.encode(), "x.jsonl", 1)
