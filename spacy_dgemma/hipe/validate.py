"""Check HIPE-2026 records against the official JSON schema (shipped with the package)."""
import json
from functools import lru_cache
from importlib import resources
from typing import Any, Dict, List, Optional

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from spacy_dgemma.errors import InputError

SCHEMA_FILE = "hipe-2026-data.schema.json"
# Deepest nesting of a value that the reader accepts (a HIPE-2026 record is 4 levels deep;
# much deeper values would break recursive code downstream: jsonschema, copies, msgpack).
MAX_DEPTH = 64
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number", type(None): "null"}


@lru_cache(maxsize=1)
def load_schema() -> Dict[str, Any]:
    """The official HIPE-2026 data schema."""
    return json.loads(resources.files("spacy_dgemma").joinpath("schemas", SCHEMA_FILE).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    # No format checker: like `jsonschema.validate`, "format" is an annotation, not an assertion
    # (the release itself has dates such as "NA").
    return Draft202012Validator(load_schema())


def schema_error(record: Any) -> Optional[ValidationError]:
    """The most relevant schema violation of `record`, or None when it is valid.

    Raises RecursionError for a value nested too deeply to check.
    """
    if _conforms(record):
        return None
    return best_match(_validator().iter_errors(record))


def is_valid(record: Any) -> bool:
    """Whether `record` is a valid HIPE-2026 document."""
    return schema_error(record) is None


# The schema, by hand, for the common case: `_conforms` says True only for records that the
# schema accepts (tests check it against jsonschema); for anything else jsonschema decides and
# explains. It is about 100 times faster than jsonschema on a valid record.
_DOC_STRINGS = ("document_id", "source", "language", "text")
_MEDIA_STRINGS = ("publication_title", "time_period", "source_type")
_PAIR_STRINGS = ("pers_entity_id", "loc_entity_id")
_PAIR_OPTIONAL_STRINGS = ("pers_wikidata_QID", "loc_wikidata_QID")
_PAIR_REQUIRED = _PAIR_STRINGS + _PAIR_OPTIONAL_STRINGS + ("pers_mentions_list", "loc_mentions_list", "at", "isAt")
_AT = ("TRUE", "FALSE", "PROBABLE", None)
_IS_AT = ("TRUE", "FALSE", None)


def _conforms(record: Any) -> bool:
    """True if `record` certainly matches the HIPE-2026 schema (False: let jsonschema decide)."""
    if type(record) is not dict or any(type(record.get(key)) is not str for key in _DOC_STRINGS):
        return False
    media, date, pairs = record.get("media"), record.get("date", 0), record.get("sampled_pairs")
    if type(media) is not dict or any(type(media.get(key)) is not str for key in _MEDIA_STRINGS):
        return False
    if not (date is None or type(date) is str) or type(pairs) is not list:
        return False
    return all(_pair_conforms(pair) for pair in pairs)


def _pair_conforms(pair: Any) -> bool:
    if type(pair) is not dict or not all(key in pair for key in _PAIR_REQUIRED):
        return False
    if any(type(pair[key]) is not str for key in _PAIR_STRINGS):
        return False
    for key in _PAIR_OPTIONAL_STRINGS + ("at_explanation", "isAt_explanation"):
        value = pair.get(key)
        if not (value is None or type(value) is str):
            return False
    for key in ("pers_mentions_list", "loc_mentions_list"):
        mentions = pair[key]
        if type(mentions) is not list or any(type(m) is not str for m in mentions) or len(set(mentions)) != len(mentions):
            return False
    return pair["at"] in _AT and pair["isAt"] in _IS_AT


def check_record(record: Any, file: str, line: Optional[int]) -> Optional[InputError]:
    """The first problem of `record` as an input error naming `file` and `line`, or None.

    record: one parsed JSON line.
    file / line: where it was read, for the message.
    """
    try:
        err = schema_error(record)
    except RecursionError:
        return InputError.of("E100", file, line, limit=MAX_DEPTH, where="")
    return None if err is None else _input_error(err, file, line)


def _input_error(err: ValidationError, file: str, line: Optional[int]) -> InputError:
    """Turn a jsonschema error into a one-line message in the project's terms."""
    path = list(err.absolute_path)
    where = f" in {path_str(path)}" if path else ""
    if err.validator == "required":
        field = next((f for f in err.validator_value if f not in err.instance), str(err.validator_value))
        return InputError.of("E002", file, line, field=field, where=where)
    field = str(path[-1]) if path else "document"
    parent = f" in {path_str(path[:-1])}" if len(path) > 1 else ""
    if err.validator == "enum":
        expected = ", ".join("null" if v is None else str(v) for v in err.validator_value)
        return InputError.of("E003", file, line, value=err.instance, field=field, where=parent, expected=expected)
    if err.validator in ("type", "anyOf"):
        detail = f"got {_type_name(err.instance)}, expected {' or '.join(_allowed_types(err))}"
        return InputError.of("E004", file, line, field=field, where=parent, detail=detail)
    return InputError.of("E009", file, line, where=where, detail=err.message)


def _allowed_types(err: ValidationError) -> List[str]:
    """The JSON types a `type` or `anyOf` schema allows, in schema order."""
    schemas = err.validator_value if err.validator == "anyOf" else [{"type": err.validator_value}]
    types: List[str] = []
    for schema in schemas:
        value = schema.get("type", [])
        types.extend([value] if isinstance(value, str) else value)
    return list(dict.fromkeys(types))


def path_str(path) -> str:
    """A JSON path as text: ``sampled_pairs[0].at``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _type_name(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)
