"""Once a name is found, find it again: entity propagation within a document.

A newspaper names the same person or place several times, and the recogniser finds some
mentions but not others ("Besuch Chautemps'" missed, "Chautemps erklärte" found). This
component marks every other occurrence of a predicted entity's exact words in the same
document with the entity's label, and, for the labels in `last_word_labels`, the last word of
a multi-word entity too ("Stadtrat Lutz" → "Lutz"). Only tokens outside any entity are marked,
so the recogniser's entities (and any preset ones) stay as they are (measured: docs/experiments/).
"""
from collections import Counter, defaultdict
from typing import Dict, Iterable, List, Set, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

Words = Tuple[str, ...]


@Language.factory(
    "dgemma_propagate_entities",
    default_config={"labels": ["pers", "loc"], "last_word_labels": ["pers"], "min_word_length": 3},
)
def make_propagate_entities(
    nlp: Language, name: str, labels: List[str], last_word_labels: List[str], min_word_length: int
) -> "PropagateEntities":
    """labels: entity labels to propagate. last_word_labels: labels whose multi-word entities
    also propagate their last word. min_word_length: one-word strings shorter than this are not
    propagated (initials, "Mr")."""
    return PropagateEntities(labels, last_word_labels, min_word_length)


class PropagateEntities:
    """Marks more occurrences of the document's predicted entities (see the module docstring)."""

    def __init__(self, labels: Iterable[str], last_word_labels: Iterable[str], min_word_length: int = 3):
        self.labels = set(labels)
        self.last_word_labels = set(last_word_labels)
        self.min_word_length = min_word_length

    def __call__(self, doc: Doc) -> Doc:
        strings = self._strings(doc)
        if not strings:
            return doc
        taken: Set[int] = {i for ent in doc.ents for i in range(ent.start, ent.end)}
        words = [token.text for token in doc]
        starts: Dict[str, List[int]] = defaultdict(list)  # first word → where it occurs
        for i, word in enumerate(words):
            starts[word].append(i)
        added: List[Span] = []
        # Longest strings first, so "Lord Rosebery" is marked before "Rosebery" could take its last word.
        for key in sorted(strings, key=lambda k: (-len(k), k)):
            label = strings[key].most_common(1)[0][0]
            n = len(key)
            for start in starts[key[0]]:
                if tuple(words[start : start + n]) == key and not any(i in taken for i in range(start, start + n)):
                    added.append(Span(doc, start, start + n, label=label))
                    taken.update(range(start, start + n))
        if added:
            doc.ents = sorted(list(doc.ents) + added, key=lambda span: span.start)
        return doc

    def _strings(self, doc: Doc) -> Dict[Words, Counter]:
        """Word tuples to propagate → votes per label (a last word counts half a vote)."""
        strings: Dict[Words, Counter] = defaultdict(Counter)
        for ent in doc.ents:
            if ent.label_ not in self.labels or not ent.text[:1].isupper():
                continue
            words = tuple(token.text for token in ent)
            if len(words) > 1 or len(words[0]) >= self.min_word_length:
                strings[words][ent.label_] += 1
            last = ent[-1].text
            if ent.label_ in self.last_word_labels and len(ent) > 1 and last[:1].isupper() and len(last) >= self.min_word_length:
                strings[(last,)][ent.label_] += 0.5
        return strings
