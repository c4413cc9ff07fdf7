"""Names under which spacy-dgemma stores data on a Doc: span groups and ``doc.user_data`` keys."""

# Span groups filled by the HIPE reader (or by the recogniser for raw text).
PERSONS_KEY = "persons"
PLACES_KEY = "places"
# Span group the relation component writes for visualisation.
RELATIONS_KEY = "dgemma_relations"
# Raw storage of the relation records in doc.user_data (plain, msgpack-safe dicts).
RELATIONS_USER_DATA_KEY = "dgemma_relations"
# Loss weight of a training Doc in doc.user_data (set by the reader; absent: 1.0).
LOSS_WEIGHT_KEY = "dgemma_loss_weight"
