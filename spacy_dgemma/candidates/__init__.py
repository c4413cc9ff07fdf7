"""Persons and places on a Doc (from HIPE span groups or any recogniser's ``doc.ents``),
grouped into entities, and the candidate (person, place) pairs built from them."""
