"""Check HIPE-2026 records against the official JSON schema (shipped with the package)."""
import json
from functools import lru_cache
from importlib import resources
from typing import Any, Dict, List, Optional

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from spacy_dgemma.errors import InputError

SCHEMA_FILE = "hipe-2026-data.schema.json"
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
    """The most relevant schema violation of `record`, or None when it is valid."""
    return best_match(_validator().iter_errors(record))


def is_valid(record: Any) -> bool:
    """Whether `record` is a valid HIPE-2026 document."""
    return schema_error(record) is None


def check_record(record: Any, file: str, line: Optional[int]) -> Optional[InputError]:
    """The first problem of `record` as an input error naming `file` and `line`, or None.

    record: one parsed JSON line.
    file / line: where it was read, for the message.
    """
    err = schema_error(record)
    return None if err is None else _input_error(err, file, line)


def _input_error(err: ValidationError, file: str, line: Optional[int]) -> InputError:
    """Turn a jsonschema error into a one-line message in the project's terms."""
    path = list(err.absolute_path)
    where = f" in {_path_str(path)}" if path else ""
    if err.validator == "required":
        field = next((f for f in err.validator_value if f not in err.instance), str(err.validator_value))
        return InputError.of("E002", file, line, field=field, where=where)
    field = str(path[-1]) if path else "document"
    parent = f" in {_path_str(path[:-1])}" if len(path) > 1 else ""
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


def _path_str(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _type_name(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)
