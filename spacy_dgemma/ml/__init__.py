"""Relation model architectures (registered in spaCy's ``architectures`` registry)."""
