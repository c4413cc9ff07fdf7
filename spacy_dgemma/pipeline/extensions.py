"""The Doc extensions spacy-dgemma reads and writes, registered once on import.

Every name is prefixed ``dgemma_`` so that it cannot clash with another package's
``doc._.relations``; if the name is taken all the same, registration raises E050 rather than
silently sharing it. All values live in ``doc.user_data`` as plain data, so that
``DocBin(store_user_data=True)``, ``Doc.to_bytes`` and ``nlp.pipe(n_process=2)`` keep them.

- ``doc._.dgemma_hipe``: document metadata of a HIPE record (every field but ``text`` and
  ``sampled_pairs``), or None for raw text;
- ``doc._.dgemma_hipe_pairs``: the input ``sampled_pairs`` exactly as read (gold labels included);
- ``doc._.dgemma_unaligned``: the HIPE mentions that could not be found in the text
  (``{"entity_id", "mention", "kind"}`` dicts);
- ``doc._.dgemma_relations``: the relation records (:class:`Relation` objects);
- ``doc._.dgemma_relations_data``: the same records as plain dicts (``Relation.to_dict()``), for
  ``doc.to_json(underscore=["dgemma_relations_data"])`` and ``Doc.from_json``.
"""
from typing import Any, Callable, Dict, Tuple

from spacy.tokens import Doc

from spacy_dgemma.errors import Errors
from spacy_dgemma.pipeline.records import get_relations, get_relations_data, set_relations, set_relations_data


def _stored(key: str) -> Tuple[Callable[[Doc], Any], Callable[[Doc, Any], None]]:
    """A getter and a setter that keep a plain value under ``doc.user_data[key]``."""

    def getter(doc: Doc) -> Any:
        return doc.user_data.get(key)

    def setter(doc: Doc, value: Any) -> None:
        doc.user_data[key] = value

    return getter, setter


EXTENSIONS: Dict[str, Tuple[Callable, Callable]] = {
    "dgemma_hipe": _stored("dgemma_hipe"),
    "dgemma_hipe_pairs": _stored("dgemma_hipe_pairs"),
    "dgemma_unaligned": _stored("dgemma_unaligned"),
    "dgemma_relations": (get_relations, set_relations),
    "dgemma_relations_data": (get_relations_data, set_relations_data),
}


def register_extensions() -> None:
    """Register the Doc extensions (idempotent); E050 if another package holds one of the names."""
    for name, (getter, setter) in EXTENSIONS.items():
        if Doc.has_extension(name):
            if Doc.get_extension(name)[2] is getter:
                continue
            raise ValueError(Errors.E050.format(name=name))
        Doc.set_extension(name, getter=getter, setter=setter)


register_extensions()
