"""The search index's BM25 side: captions in a tantivy index, each analysed by its language.

A caption goes to the field of its row's language (curation's fastText label): lower-cased,
stopwords dropped and words stemmed by that language's Snowball rules where tantivy has
them ("for" and "a" stop matching everything; "crying" finds "cry"); Chinese and Japanese
by ideograph and by run of kana; every other language as plain lower-cased words. A query is
analysed by every field's analyzer and searched in all of them, since its language is not
known: each caption is in one field only, so no document is scored twice.

Indexes built before the per-language fields have one `caption` field (`Analyzers.PLAIN`);
they are read as they were written.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

import numpy as np
import tantivy

# A filter keeping at most this many rows is handed to BM25 as a set of rows; a wider one
# filters BM25's ranked list instead.
ROW_SET = 10_000
# fastText's label → tantivy's Snowball language; the stopword lists tantivy has.
STEMMED = {
    "en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
    "pt": "portuguese", "nl": "dutch", "sv": "swedish", "da": "danish", "no": "norwegian",
    "fi": "finnish", "hu": "hungarian", "ru": "russian", "ro": "romanian", "tr": "turkish",
    "ar": "arabic", "el": "greek", "ta": "tamil",
}  # fmt: skip
STOPWORDS = {
    "danish", "dutch", "english", "finnish", "french", "german", "hungarian", "italian",
    "norwegian", "portuguese", "russian", "spanish", "swedish",
}  # fmt: skip
CHARACTERS = ("zh", "ja")  # no spaces between words: each ideograph a term, kana by runs
CHARACTER_TERMS = r"\p{Han}|\p{Hiragana}+|\p{Katakana}+|[\p{L}\p{N}]+"


class Analyzers(StrEnum):
    """How an index's captions were analysed (recorded in its manifest)."""

    PLAIN = "plain"  # one `caption` field, tantivy's default tokenizer
    PER_LANGUAGE = "per-language"


def field_of(lang: str | None) -> str:
    """The field a caption in `lang` is indexed in."""
    return f"caption_{lang}" if lang in STEMMED or lang in CHARACTERS else "caption_other"


def _analyzer(field: str) -> tantivy.TextAnalyzer:
    """The analyzer of `field`: `caption` (the plain indexes') and `caption_other` are
    tantivy's default one."""
    lang = field.removeprefix("caption_")
    if lang in CHARACTERS:
        builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(CHARACTER_TERMS))
        return builder.filter(tantivy.Filter.lowercase()).build()
    builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    builder = builder.filter(tantivy.Filter.remove_long(40)).filter(tantivy.Filter.lowercase())
    language = STEMMED.get(lang)
    if language in STOPWORDS:
        builder = builder.filter(tantivy.Filter.stopword(language))
    if language:
        builder = builder.filter(tantivy.Filter.stemmer(language))
    return builder.build()


FIELDS = tuple(dict.fromkeys(field_of(lang) for lang in (*STEMMED, *CHARACTERS, None)))


def _fields(analyzers: Analyzers) -> tuple[str, ...]:
    return ("caption",) if analyzers is Analyzers.PLAIN else FIELDS


def schema(analyzers: Analyzers) -> tantivy.Schema:
    """The captions' fields (each with its analyzer's name) and each document's row."""
    builder = tantivy.SchemaBuilder()
    for field in _fields(analyzers):
        name = "default" if analyzers is Analyzers.PLAIN else field
        builder.add_text_field(field, stored=False, tokenizer_name=name)
    builder.add_integer_field("row", stored=True, indexed=True, fast=True)
    return builder.build()


def _open(
    path: Path, analyzers: Analyzers, create: bool = False
) -> tuple[tantivy.Index, dict[str, tantivy.TextAnalyzer]]:
    """The index at `path` and its fields' analyzers, registered with it (analyzers live in
    the process, not the index; a plain index's field uses tantivy's own default)."""
    index = (
        tantivy.Index(schema(analyzers), path=str(path))
        if create
        else tantivy.Index.open(str(path))
    )
    analyzed = {field: _analyzer(field) for field in _fields(analyzers)}
    if analyzers is Analyzers.PER_LANGUAGE:
        for field, analyzer in analyzed.items():
            index.register_tokenizer(field, analyzer)
    return index, analyzed


def write(captions: Sequence[str | None], langs: Sequence[str | None], path: Path) -> None:
    """A per-language BM25 index of `captions` at `path`, row `i` holding captions[i]."""
    path.mkdir(parents=True)
    writer = _open(path, Analyzers.PER_LANGUAGE, create=True)[0].writer()
    for row, (caption, lang) in enumerate(zip(captions, langs, strict=True)):
        document = tantivy.Document(row=row)
        document.add_text(field_of(lang), caption or "")
        writer.add_document(document)
    writer.commit()
    writer.wait_merging_threads()


class Lexical:
    """BM25 over an index's captions: the best rows for a query's words."""

    def __init__(self, path: Path, analyzers: Analyzers) -> None:
        self.index, self.analyzed = _open(path, analyzers)
        self.schema = schema(analyzers)

    def terms(self, text: str) -> list[tuple[str, str]]:
        """(field, term) for each of `text`'s words as each field's analyzer makes it."""
        return [
            (field, term)
            for field, analyzer in self.analyzed.items()
            for term in dict.fromkeys(analyzer.analyze(text))
        ]

    def search(self, text: str, depth: int, allowed: np.ndarray | None) -> dict[int, float]:
        """row → BM25 score of the best `depth` rows (that pass the filters) for the words
        of `text`, each an optional term (no query syntax: user text is never parsed)."""
        terms = self.terms(text)
        if not terms:
            return {}
        query = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, field, term))
                for field, term in terms
            ]
        )
        if allowed is not None and len(allowed) <= ROW_SET:
            rows = tantivy.Query.term_set_query(self.schema, "row", [int(r) for r in allowed])
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, query), (tantivy.Occur.Must, rows)]
            )
            allowed = None
        searcher = self.index.searcher()
        keep = None if allowed is None else set(allowed.tolist())
        limit = depth
        while True:
            found = searcher.search(query, limit)
            scored = {int(searcher.doc(a)["row"][0]): s for s, a in found.hits}
            if keep is not None:
                scored = {r: s for r, s in scored.items() if r in keep}
            if len(scored) >= depth or len(found.hits) < limit:
                return dict(list(scored.items())[:depth])
            limit *= 4
