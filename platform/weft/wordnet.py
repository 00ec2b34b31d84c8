"""WordNet 3.0 nouns (Debian's `wordnet-base`), read in place: what else a word is called and
what it is a kind of, so that the text side learns that a parrot is a bird ("parrot" →
"psittacine", "bird", "vertebrate"). The file formats are `man 5 wndb`'s."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from weft.specs import SpecError

ROOT = Path("/usr/share/wordnet")
SYNONYMS = 3  # of a sense's words, the most used
# Words of a phrase that name no thing in it ("sun behind cloud").
STOPWORDS = frozenset({
    "and", "the", "with", "for", "from", "into", "onto", "without", "off", "over", "under",
    "above", "below", "behind", "between", "beside", "next", "out", "down",
})  # fmt: skip


@dataclass(frozen=True)
class Synset:
    """One sense: its words (most used first) and the senses it is a kind of."""

    words: tuple[str, ...]
    hypernyms: tuple[int, ...]  # byte offsets into data.noun


@cache
def _senses() -> dict[str, tuple[int, ...]]:
    """Each noun (lower case, words joined by "_") → its senses, most frequent first."""
    try:
        lines = (ROOT / "index.noun").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise SpecError(f"WordNet not found under {ROOT}: apt-get install wordnet-base") from None
    senses = {}
    for line in lines:
        if line.startswith(" "):  # the licence
            continue
        fields = line.split()
        pointers = int(fields[3])
        count = int(fields[2])
        senses[fields[0]] = tuple(int(o) for o in fields[6 + pointers : 6 + pointers + count])
    return senses


@cache
def synset(offset: int) -> Synset:
    """The sense at `offset` of data.noun."""
    with (ROOT / "data.noun").open("rb") as f:
        f.seek(offset)
        fields = f.readline().decode("utf-8").split(" | ", 1)[0].split()
    n_words = int(fields[3], 16)
    words = tuple(w.replace("_", " ") for w in fields[4 : 4 + 2 * n_words : 2])
    at = 4 + 2 * n_words
    pointers = fields[at + 1 : at + 1 + 4 * int(fields[at])]
    hypernyms = tuple(
        int(pointers[i + 1]) for i in range(0, len(pointers), 4) if pointers[i] in ("@", "@i")
    )
    return Synset(words, hypernyms)


def lemma(word: str) -> str | None:
    """The form WordNet lists `word` (a noun, any case, maybe plural) under, if any."""
    key = word.strip().lower().replace(" ", "_")
    senses = _senses()
    candidates = [key, key.replace("-", "_")]
    if key.endswith("ies"):
        candidates.append(key[:-3] + "y")
    if key.endswith("es"):
        candidates.append(key[:-2])
    if key.endswith("s"):
        candidates.append(key[:-1])
    return next((c for c in candidates if c in senses), None)


@cache
def related(phrase: str, depth: int = 3) -> tuple[str, ...]:
    """What `phrase` is also called and what it is a kind of: the other words of its most
    frequent noun sense, then the first word of each sense above it, `depth` steps up. A
    phrase WordNet lacks ("red apple") gathers those of each of its words it knows, with the
    word itself ("red", "color", ..., "apple", "edible fruit", ...)."""
    found = lemma(phrase)
    if found is not None:
        return _above(found, phrase, depth)
    words: list[str] = []
    for word in phrase.split():
        if len(word) > 2 and word.lower() not in STOPWORDS and (known := lemma(word)):
            words += [known.replace("_", " "), *_above(known, word, depth)]
    return tuple(dict.fromkeys(w for w in words if w.lower() != phrase.lower()))


def _above(lemma_: str, written: str, depth: int) -> tuple[str, ...]:
    first = synset(_senses()[lemma_][0])
    words = [w for w in first.words[:SYNONYMS] if w.lower() != written.lower()]
    level = first.hypernyms[:1]
    for _ in range(depth):
        if not level:
            break
        above = synset(level[0])
        words.append(above.words[0])
        level = above.hypernyms[:1]
    return tuple(dict.fromkeys(words))
