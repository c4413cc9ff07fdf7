"""The Doc extensions spacy-dgemma reads and writes, registered once on import.

All values live in ``doc.user_data`` (spaCy stores extension values there), so that
``DocBin(store_user_data=True)``, ``Doc.to_bytes`` and ``nlp.pipe(n_process=2)`` keep them.
"""
from spacy.tokens import Doc

# Span groups filled by the HIPE reader (or by the recogniser for raw text).
PERSONS_KEY = "persons"
PLACES_KEY = "places"
# Span group the relation component writes for visualisation.
RELATIONS_KEY = "dgemma_relations"
# Raw storage of the relation records in doc.user_data (plain, msgpack-safe dicts).
RELATIONS_USER_DATA_KEY = "dgemma_relations"
# Loss weight of a training Doc in doc.user_data (set by the reader; absent: 1.0).
LOSS_WEIGHT_KEY = "dgemma_loss_weight"


def register_extensions() -> None:
    """Register the Doc extensions (idempotent)."""
    # Document metadata of a HIPE record: every input field except `text` and `sampled_pairs`.
    if not Doc.has_extension("hipe"):
        Doc.set_extension("hipe", default=None)
    # The input `sampled_pairs` (gold labels included, when given), exactly as read.
    if not Doc.has_extension("hipe_pairs"):
        Doc.set_extension("hipe_pairs", default=None)
    # Mentions of the input pairs that could not be aligned to the text: list of dicts
    # {"entity_id", "mention", "kind"}.
    if not Doc.has_extension("unaligned_mentions"):
        Doc.set_extension("unaligned_mentions", default=None)
    if not Doc.has_extension("relations"):
        from .relations import get_relations, set_relations

        Doc.set_extension("relations", getter=get_relations, setter=set_relations)


register_extensions()
